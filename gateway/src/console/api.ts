/**
 * Console-only read routes under /ui/api/ (the console also calls the admin API itself:
 * sessions, checkpoint, approvals). Each checks its role with the admin server's
 * requireRole, so a bearer token works here exactly as a console session does.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { AuditEvent, Identity } from '@gatehouse/core';
import type { EventFilter } from '@gatehouse/audit';
import { listAsciicasts } from '@gatehouse/recording';
import type { AuditReader } from '../audit-reader.js';
import type { Verifier } from './verify.js';
import { AdminError } from '../problems.js';

export type RequireRole = (req: IncomingMessage, roles: ('admin' | 'reviewer' | 'auditor')[]) => Promise<Identity>;

export interface ApiDeps {
  dataDir: string;
  reader: AuditReader;
  verifierKey: string;
  verifier: Verifier;
  /** Where a shipping agent on this host keeps its cursors. */
  agentStateDir: string;
}

/** A JSON body, or a text body with its media type. */
export type ApiAnswer = { json: unknown } | { text: string; type: string };

const SESSION = '([0-9a-f-]{36})';
const TERMINALS = new RegExp(`^/ui/api/sessions/${SESSION}/terminals$`);
const CAST = new RegExp(`^/ui/api/sessions/${SESSION}/terminals/(\\d{1,4})\\.cast$`);
/** Largest terminal recording served (uncompressed); the SSH connector's default budget is 50 MB. */
const MAX_CAST = 64 * 1024 * 1024;
/** Audit events one chart or filter reads at most (the reader's own ceiling). */
const MAX_EVENTS = 10_000;
const gunzipAsync = promisify(gunzip);

export async function consoleApi(req: IncomingMessage, url: URL, requireRole: RequireRole, d: ApiDeps): Promise<ApiAnswer> {
  if (req.method !== 'GET') throw new AdminError(405, 'method not allowed');
  const p = url.pathname;
  if (p === '/ui/api/sessions') {
    await requireRole(req, ['auditor']);
    return { json: await sessions(url.searchParams, d.reader) };
  }
  let m = TERMINALS.exec(p);
  if (m) {
    await requireRole(req, ['auditor']);
    const files = listAsciicasts(d.dataDir, m[1]);
    const terminals = await Promise.all(files.map(async (f) => ({ n: Number(/\.(\d+)\.cast\.gz$/.exec(f)![1]), bytes: (await stat(f)).size })));
    return { json: { terminals } };
  }
  m = CAST.exec(p);
  if (m) {
    await requireRole(req, ['auditor']);
    const n = Number(m[2]);
    const file = listAsciicasts(d.dataDir, m[1]).find((f) => f.endsWith(`.${n}.cast.gz`));
    if (!file) throw new AdminError(404, 'no such terminal recording');
    try {
      const text = (await gunzipAsync(await readFile(file), { maxOutputLength: MAX_CAST })).toString('utf8');
      return { text, type: 'application/x-asciicast' };
    } catch (e) {
      throw new AdminError(500, `terminal recording unreadable: ${(e as NodeJS.ErrnoException).code ?? 'corrupt'}`);
    }
  }
  if (p === '/ui/api/charts') {
    await requireRole(req, ['auditor']);
    return { json: await charts(url.searchParams, d.reader) };
  }
  if (p === '/ui/api/integrity') {
    await requireRole(req, ['auditor']);
    const [checkpoint, verification, agent] = await Promise.all([d.reader.checkpoint(), d.verifier.verify(), agentState(d.agentStateDir)]);
    return { json: { checkpoint, verifier_key: d.verifierKey, verification, agent } };
  }
  throw new AdminError(404, 'not found');
}

function timeParam(q: URLSearchParams, k: string): string | undefined {
  const v = q.get(k);
  if (v === null || v === '') return undefined;
  if (Number.isNaN(Date.parse(v))) throw new AdminError(400, `${k} must be an RFC 3339 time`);
  return new Date(v).toISOString();
}

const text = (q: URLSearchParams, k: string) => {
  const v = q.get(k);
  if (v !== null && v.length > 200) throw new AdminError(400, `${k} is too long`);
  return v || undefined;
};

/**
 * Sessions (their `session.start` events) by connector, subject, time range, the decision of
 * any of their units, and free text over subject, connector, session id and peer.
 */
async function sessions(q: URLSearchParams, reader: AuditReader) {
  const base: EventFilter = { connector: text(q, 'connector'), subject: text(q, 'subject'), since: timeParam(q, 'since'), until: timeParam(q, 'until') };
  const decision = text(q, 'decision');
  if (decision && !['allow', 'deny', 'review'].includes(decision)) throw new AdminError(400, 'decision must be allow, deny or review');
  const needle = text(q, 'q')?.toLowerCase();
  let starts = (await reader.events({ ...base, kind: 'session.start', limit: MAX_EVENTS })) as AuditEvent[];
  let truncated = starts.length >= MAX_EVENTS;
  if (decision) {
    const units = (await reader.events({ ...base, kind: 'unit', limit: MAX_EVENTS })) as AuditEvent[];
    truncated ||= units.length >= MAX_EVENTS;
    const hit = new Set(units.filter((u) => u.decision?.action === decision).map((u) => u.session));
    starts = starts.filter((s) => hit.has(s.session));
  }
  if (needle) {
    starts = starts.filter((s) =>
      [s.session, s.connector, s.identity?.subject ?? '', typeof s.meta?.peer === 'string' ? s.meta.peer : ''].some((f) => f.toLowerCase().includes(needle)),
    );
  }
  // Newest first, at most 500 rows: the page is for finding a session, export is for bulk.
  return { sessions: starts.reverse().slice(0, 500), truncated };
}

/** Per connector and minute: units, denials and the p99 of the units' durations. */
async function charts(q: URLSearchParams, reader: AuditReader) {
  const minutes = Number(q.get('minutes') ?? 60);
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 1440) throw new AdminError(400, 'minutes must be 5..1440');
  const to = Math.ceil(Date.now() / 60_000) * 60_000;
  const from = to - minutes * 60_000;
  const units = (await reader.events({ kind: 'unit', since: new Date(from).toISOString(), limit: MAX_EVENTS })) as AuditEvent[];
  const by = new Map<string, { units: number[]; denials: number[]; durations: number[][] }>();
  for (const u of units) {
    const i = Math.floor((Date.parse(u.time) - from) / 60_000);
    if (i < 0 || i >= minutes) continue;
    let c = by.get(u.connector);
    if (!c) by.set(u.connector, (c = { units: Array<number>(minutes).fill(0), denials: Array<number>(minutes).fill(0), durations: Array.from({ length: minutes }, () => []) }));
    c.units[i]++;
    if (u.decision?.action === 'deny') c.denials[i]++;
    if (typeof u.result?.durationMs === 'number') c.durations[i].push(u.result.durationMs);
  }
  const connectors = [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => ({ name, units: c.units, denials: c.denials, p99: c.durations.map(p99) }));
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), minutes, truncated: units.length >= MAX_EVENTS, connectors };
}

function p99(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)];
}

/**
 * How far the shipping agent got, per sink: its durable cursors (`cursor-<sink>.json` in its
 * state directory, data_dir/agent by default). Null when no agent keeps state here.
 */
async function agentState(stateDir: string): Promise<{ sink: string; shipped: number; updated?: string; checkpoint?: number }[] | null> {
  let names: string[];
  try {
    names = (await readdir(stateDir)).filter((n) => /^cursor-.+\.json$/.test(n)).slice(0, 100);
  } catch {
    return null;
  }
  if (names.length === 0) return null;
  const out = [];
  for (const name of names.sort()) {
    try {
      const c = JSON.parse((await readFile(join(stateDir, name), 'utf8')).slice(0, 1 << 20)) as { state?: { size?: number }; updated?: string; checkpoint?: { size?: number } };
      out.push({ sink: name.slice(7, -5), shipped: Number(c.state?.size ?? 0), updated: c.updated, checkpoint: c.checkpoint?.size });
    } catch {
      out.push({ sink: name.slice(7, -5), shipped: -1 });
    }
  }
  return out;
}
