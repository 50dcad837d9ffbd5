/** Sinks from configuration. A sink's name keys its cursor file, so it must be stable and unique. */
import { resolve } from 'node:path';
import type { AgentSinkConfig } from '@gatehouse/core';
import { FileSink } from './file.js';
import { HttpSink } from './http.js';
import { NatsSink } from './nats.js';
import { PostgresSink } from './postgres.js';
import type { Sink } from './sink.js';

export type { Sink } from './sink.js';
export { SinkConflict } from './sink.js';

/** `name`, else the type, else (a type used twice) type-<index>. */
export function sinkNames(sinks: readonly AgentSinkConfig[]): string[] {
  return sinks.map((s, i) => s.name ?? (sinks.filter((o) => o.type === s.type).length > 1 ? `${s.type}-${i}` : s.type));
}

/** `baseDir`: where relative file paths are anchored (the config file's folder). */
export function makeSinks(sinks: readonly AgentSinkConfig[], baseDir: string): Sink[] {
  const names = sinkNames(sinks);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`agent.sinks: two sinks are named "${dup}" (give each a distinct name: it keys its cursor)`);
  return sinks.map((s, i): Sink => {
    switch (s.type) {
      case 'postgres':
        return new PostgresSink(names[i], s.url);
      case 'nats':
        return new NatsSink(names[i], s.url, s.subject, s.stream);
      case 'http':
        return new HttpSink(names[i], s.url, s.secret, s.timeout);
      case 'file':
        return new FileSink(names[i], resolve(baseDir, s.path), s.max_bytes);
    }
  });
}
