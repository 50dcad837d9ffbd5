/**
 * Verification from outside: the central store alone (every gateway's chain, Merkle roots,
 * checkpoints signed by the key registered for it, and optionally the agents' cosignatures),
 * and a local log compared with what was shipped from it (a host that rewrote or truncated
 * its log after shipping is caught without trusting anything on that host).
 */
import { openReadOnly, parseVerifierKey, verifyLog } from '@gatehouse/audit';
import pg from 'pg';
import { ChainVerifier, isFault } from './chain.js';
import { parseWitnessKey, verifyCosignature, type WitnessPublic } from './witness.js';

export interface GatewayReport {
  gatewayId: string;
  ok: boolean;
  size: number;
  /** Events covered by a verified signed checkpoint (the rest is chained but not yet signed). */
  signed: number;
  checkpoints: number;
  cosigned: number;
  firstBadSeq?: number;
  reason?: string;
}

export interface CentralOptions {
  gateway?: string;
  /** Witness verifier keys (cosignature/v1): every checkpoint needs a valid cosignature by one of them. */
  witnessKeys?: string[];
}

const PAGE = 5000;

interface CpRow {
  id: string;
  size: string;
  note: string;
  cosignature: string | null;
}

export async function verifyCentral(url: string, opts: CentralOptions = {}): Promise<GatewayReport[]> {
  const witnesses: WitnessPublic[] = [];
  for (const k of opts.witnessKeys ?? []) {
    const w = parseWitnessKey(k);
    if (!w) throw new Error(`--witness-key: not a cosignature/v1 Ed25519 verifier key: ${k.slice(0, 40)}`);
    witnesses.push(w);
  }
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    const has = await c.query<{ t: string | null }>("SELECT to_regclass('gatehouse.gateways')::text AS t");
    if (!has.rows[0].t) throw new Error('no Gatehouse central store there (schema gatehouse not found: no agent has shipped to it)');
    const gws = await c.query<{ gateway_id: string; verifier_key: string }>(
      'SELECT gateway_id, verifier_key FROM gatehouse.gateways WHERE $1::text IS NULL OR gateway_id = $1 ORDER BY gateway_id',
      [opts.gateway ?? null],
    );
    if (opts.gateway && gws.rows.length === 0)
      return [{ gatewayId: opts.gateway, ok: false, size: 0, signed: 0, checkpoints: 0, cosigned: 0, reason: 'no such gateway in the central store' }];
    const out: GatewayReport[] = [];
    for (const g of gws.rows) out.push(await verifyGateway(c, g.gateway_id, g.verifier_key, witnesses));
    return out;
  } finally {
    await c.end();
  }
}

async function verifyGateway(c: pg.Client, gw: string, keyText: string, witnesses: WitnessPublic[]): Promise<GatewayReport> {
  const rep: GatewayReport = { gatewayId: gw, ok: false, size: 0, signed: 0, checkpoints: 0, cosigned: 0 };
  const bad = (seq: number | undefined, reason: string): GatewayReport => ({ ...rep, ...(seq !== undefined ? { firstBadSeq: seq } : {}), reason });
  const key = parseVerifierKey(keyText);
  if (!key.ok) return bad(undefined, `registered verifier key: ${key.error.message}`);
  const cps = (await c.query<CpRow>('SELECT id, size, note, cosignature FROM gatehouse.checkpoints WHERE gateway_id = $1 ORDER BY size, id', [gw])).rows;
  const v = new ChainVerifier();
  let vouched = 0;
  let ci = 0;
  const checkAt = (): string | null => {
    for (; ci < cps.length && Number(cps[ci].size) <= v.size; ci++) {
      const cp = cps[ci];
      if (Number(cp.size) !== v.size) return `checkpoint ${cp.id} has size ${cp.size}, which no tree size matches`;
      const r = v.checkpoint(cp.note, key.value, null, vouched);
      if (isFault(r)) return r.message;
      if (witnesses.length) {
        const w = witnesses.find((x) => cp.cosignature?.includes(` ${x.name} `));
        const t = w && cp.cosignature ? verifyCosignature(w, cp.note, cp.cosignature) : 'no cosignature by a given witness key';
        if (typeof t === 'string') return `checkpoint at size ${cp.size}: ${t}`;
        rep.cosigned++;
      }
      vouched = v.size;
      rep.signed = v.size;
      rep.checkpoints++;
    }
    return null;
  };
  let err = checkAt();
  if (err) return bad(Math.min(vouched + 1, Math.max(1, v.size)), err);
  for (let after = 0; ;) {
    const { rows } = await c.query<{ seq: string; hash: Buffer; body: string }>(
      'SELECT seq, hash, body FROM gatehouse.events WHERE gateway_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [gw, after, PAGE],
    );
    for (const r of rows) {
      const h = v.feed(Number(r.seq), r.body, { hash: r.hash });
      if (isFault(h)) return { ...bad(h.seq, h.message), size: v.size };
      err = checkAt();
      if (err) return { ...bad(vouched + 1, err), size: v.size };
      rep.size = v.size;
    }
    if (rows.length < PAGE) break;
    after = Number(rows.at(-1)!.seq);
  }
  if (ci < cps.length) return bad(v.size + 1, `central store truncated: a checkpoint covers ${cps[ci].size} events but only ${v.size} are stored`);
  return { ...rep, ok: true };
}

export interface CompareReport {
  ok: boolean;
  /** Events compared (the central store's size). */
  compared: number;
  local: number;
  firstBadSeq?: number;
  reason?: string;
}

/**
 * The local log against what was shipped from it: every centrally stored event must be in the
 * local log with the same body and hash, and the local log must verify against the newest
 * centrally stored checkpoint with the centrally registered key (not the one on this disk).
 */
export async function compareLocal(dataDir: string, gatewayId: string, url: string): Promise<CompareReport> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await c.connect();
  const db = openReadOnly(dataDir);
  try {
    if (!db) return { ok: false, compared: 0, local: 0, reason: `no audit log in ${dataDir}` };
    const g = await c.query<{ verifier_key: string }>('SELECT verifier_key FROM gatehouse.gateways WHERE gateway_id = $1', [gatewayId]);
    if (!g.rows.length) return { ok: false, compared: 0, local: 0, reason: `gateway ${gatewayId} has shipped nothing to the central store` };
    db.exec('BEGIN');
    const local = (db.prepare('SELECT max(seq) AS m FROM events').get() as { m: number | null }).m ?? 0;
    const get = db.prepare('SELECT body, hash FROM events WHERE seq = ?');
    let compared = 0;
    for (let after = 0; ;) {
      const { rows } = await c.query<{ seq: string; hash: Buffer; body: string }>(
        'SELECT seq, hash, body FROM gatehouse.events WHERE gateway_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [gatewayId, after, PAGE],
      );
      for (const r of rows) {
        const seq = Number(r.seq);
        const l = get.get(seq) as { body: string; hash: Buffer } | undefined;
        if (!l) return { ok: false, compared, local, firstBadSeq: seq, reason: `event ${seq} was shipped but is missing from the local log (truncated or deleted)` };
        if (l.body !== r.body || !l.hash.equals(r.hash))
          return { ok: false, compared, local, firstBadSeq: seq, reason: `local event ${seq} differs from the one shipped (rewritten after shipping)` };
        compared++;
      }
      if (rows.length < PAGE) break;
      after = Number(rows.at(-1)!.seq);
    }
    db.exec('COMMIT');
    const cp = await c.query<{ note: string }>('SELECT note FROM gatehouse.checkpoints WHERE gateway_id = $1 ORDER BY size DESC, id DESC LIMIT 1', [gatewayId]);
    const r = verifyLog(dataDir, { verifierKey: g.rows[0].verifier_key, ...(cp.rows.length ? { checkpoint: cp.rows[0].note } : {}) });
    if (!r.ok) return { ok: false, compared, local, firstBadSeq: r.firstBadSeq, reason: `local log: ${r.reason}` };
    return { ok: true, compared, local };
  } finally {
    db?.close();
    await c.end();
  }
}
