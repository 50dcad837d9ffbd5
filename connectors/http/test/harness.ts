/**
 * Connector-level harness: the real HTTP connector with a real core Session, in front of a
 * real node:http upstream. The Session's services are small in-memory stand-ins (event list,
 * token table, rule function, masker) because this suite tests the connector's use of the
 * hooks; the end-to-end suite in test/e2e/http runs the whole gateway with the real ones.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import {
  parseConfig,
  Session,
  splitHostPort,
  type AuditEventInput,
  type AuditSink,
  type Connector,
  type Decision,
  type Identity,
  type Masker,
  type SessionServices,
  type Unit,
} from '@gatehouse/core';
import { createHttpConnector, httpConnector, type HttpConnectorConfig } from '../src/index.js';

export const TOKEN = 'tok-http-test-0123456789';
export const OTHER_TOKEN = 'tok-http-other-0123456789';

export interface Upstream {
  url: string;
  server: Server;
  seen: { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[]; bytes: number }[];
  close(): Promise<void>;
}

/** Starts a real HTTP server; `handler` answers, the harness records what arrived. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bytes: 0 };
    seen.push(entry);
    req.on('data', (c: Buffer) => (entry.bytes += c.length));
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Harness {
  base: string;
  host: string;
  port: number;
  events: AuditEventInput[];
  connector: Connector;
  /** Makes the audit sink refuse every append (fail-closed tests). */
  breakAudit(): void;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** YAML of the connector entry's extra keys (indented two spaces under the list item). */
  extraYaml?: string;
  upstream: string;
  decide?: (unit: Unit, identity: Identity) => Decision;
  masker?: Masker;
  /**
   * `strict` (default): every record waits for the sink's promise. `batched`: the sink takes
   * events with `appendDetached` and the Session answers records synchronously — the path
   * the gateway's default audit takes.
   */
  durability?: 'strict' | 'batched';
}

const IDENTITIES: Record<string, Identity> = {
  [TOKEN]: { subject: 'svc:billing', issuer: 'static', groups: ['payments'], claims: {} },
  [OTHER_TOKEN]: { subject: 'svc:other', issuer: 'static', groups: ['payments'], claims: {} },
};

export async function startHarness(o: HarnessOptions): Promise<Harness> {
  const yaml = `data_dir: /tmp/unused
admin: { listen: 127.0.0.1:0 }
connectors:
  - name: api
    type: http
    listen: 127.0.0.1:0
    allow: [ { groups: [payments] } ]
    upstream:
      url: ${o.upstream}
${o.extraYaml ?? ''}`;
  const parsed = parseConfig(yaml, 'test.yaml', { env: {}, connectors: [httpConnector] });
  if (!parsed.ok) throw new Error(parsed.error.message);
  const config = parsed.value.connectors[0] as HttpConnectorConfig;
  const events: AuditEventInput[] = [];
  let broken = false;
  const audit: AuditSink = {
    async append(e) {
      if (broken) throw new Error('disk full');
      events.push(structuredClone(e));
      return events.length;
    },
    get failure() {
      return broken ? { code: 'audit.unavailable', message: 'broken' } : null;
    },
    durability: o.durability ?? 'strict',
    ...(o.durability === 'batched' ? { appendDetached: (e: AuditEventInput) => void events.push(structuredClone(e)) } : {}),
  };
  const passthrough: Masker = {
    active: false,
    planColumns: (n) => ({ columns: n.map(() => null), any: false }),
    maskText: (t) => t,
    maskJson: (v) => ({ value: v, changed: false }),
  };
  const services: SessionServices = {
    connector: { name: 'api', type: 'http' },
    allow: config.allow,
    audit,
    authenticator: {
      async authenticate(token) {
        const id = IDENTITIES[token];
        return id ? { ok: true, value: id } : { ok: false, error: { code: 'auth.invalid', message: 'token not recognised' } };
      },
    },
    policy: { decide: (unit, identity) => (o.decide ? o.decide(unit, identity) : { action: 'allow' }) },
    masking: { forIdentity: () => o.masker ?? passthrough },
    recorder: null,
    metrics: null,
    logger: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
  };
  const connector = createHttpConnector({ config, dataDir: '/tmp/unused', logger: services.logger, openSession: (peer) => new Session(services, peer) });
  const bound = await connector.start();
  const { host, port } = splitHostPort(bound);
  return {
    base: `http://${bound}`,
    host,
    port,
    events,
    connector,
    breakAudit: () => (broken = true),
    stop: () => connector.stop(500),
  };
}

/** A masker that replaces every 16-digit run and the JSON key `ssn` — enough to see masking happen. */
export const testMasker: Masker = {
  active: true,
  planColumns: (n) => ({ columns: n.map(() => null), any: false }),
  maskText: (t) => t.replace(/\b\d{12}(\d{4})\b/g, '************$1'),
  maskJson(value) {
    let changed = false;
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') {
        const m = testMasker.maskText(v);
        if (m !== v) changed = true;
        return m;
      }
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          if (k === 'ssn') {
            out[k] = '[redacted]';
            changed = true;
          } else out[k] = walk(x);
        }
        return out;
      }
      return v;
    };
    const out = walk(value);
    return { value: out, changed };
  },
};

/** Event kinds of the recorded audit trail, in order. */
export const kinds = (events: AuditEventInput[]) => events.map((e) => e.kind);
export const units = (events: AuditEventInput[]) => events.filter((e) => e.kind === 'unit');

/** Waits (bounded) until `cond` holds — for audit events written after the response. */
export async function until(cond: () => boolean, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Sends raw bytes to the connector and returns everything it answered before closing the
 * connection (5 s at most): for requests no HTTP client would send.
 */
export function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.setTimeout(5_000, () => s.destroy());
    s.write(bytes, 'latin1'); // not end(): a half-closed socket may be dropped before the answer
  });
}

/** The `detail` of a problem details body. */
export const problemDetail = (body: string): string => (JSON.parse(body) as { detail: string }).detail;
