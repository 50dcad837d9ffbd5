/**
 * The keys of a `type: ssh` connector beyond those every connector has, and the checks a
 * schema cannot express. Registered with the config loader through `sshConnector`.
 */
import { address, duration, str, type ConfigProblem, type ConnectorSchema } from '@gatehouse/core';
import type { SshConnectorConfig } from './config.js';

/** `50MB`, `512KiB`, `1GB` or a number of bytes (K/M/G are powers of 1024). */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KMG]i?B?|B)?$';

export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMG]?)(?:i?B)?$/i.exec(v.trim());
  if (!m) throw new Error(`not a size: ${v}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.floor(Number(m[1]) * unit);
}

export const sshSchema: ConnectorSchema = {
  required: ['upstream'],
  properties: {
    host_key: { ...str, default: 'data_dir' },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'user'],
      properties: {
        address,
        user: str,
        private_key: str,
        passphrase: { type: 'string' },
        password: { type: 'string' },
        known_hosts: str,
        trust_on_first_use: { type: 'boolean', default: false },
        connect_timeout: duration('10s'),
      },
    },
    recording: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        input: { type: 'boolean', default: false },
        max_bytes: {
          anyOf: [
            { type: 'integer', minimum: 4096 },
            { type: 'string', pattern: SIZE_PATTERN },
          ],
          default: '50MB',
        },
      },
    },
    idle_timeout: duration('30m'),
    keepalive_interval: duration('15s'),
    login_timeout: duration('30s'),
    max_auth_failures: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
    auth_failure_window: duration('5m'),
    max_channels: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
  },
};

/** Keys the schema accepts that this connector would otherwise ignore, and missing pairs. */
export function checkSshConfig(c: SshConnectorConfig): ConfigProblem | null {
  // SSH has its own transport security; a TLS block would be silently unused.
  if (c.tls !== undefined) return { path: ['tls'], message: 'ssh connectors do not use tls: the gateway authenticates to callers with its host_key' };
  if (c.upstream.private_key === undefined && c.upstream.password === undefined) {
    return { path: ['upstream'], message: 'upstream needs private_key or password (the gateway logs in to the target with its own credential)' };
  }
  if (c.upstream.known_hosts === undefined && !c.upstream.trust_on_first_use) {
    return { path: ['upstream'], message: "upstream needs known_hosts (the target's host key), or trust_on_first_use: true to pin the first key seen" };
  }
  if (c.upstream.passphrase !== undefined && c.upstream.private_key === undefined) return { path: ['upstream', 'passphrase'], message: 'passphrase needs private_key' };
  try {
    if (parseSize(c.recording.max_bytes) < 4096) return { path: ['recording', 'max_bytes'], message: 'max_bytes must be at least 4096' };
  } catch (e) {
    return { path: ['recording', 'max_bytes'], message: (e as Error).message };
  }
  for (const [i, m] of c.masking.entries()) {
    // Terminal output is text: only detectors can find values in it.
    if (m.columns !== undefined || m.json !== undefined) {
      return { path: ['masking', i], message: 'ssh connectors mask recorded terminal output by detectors only (no columns, no json paths)' };
    }
  }
  return null;
}
