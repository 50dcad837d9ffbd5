/**
 * `gatehouse approvals list|get|approve|deny|grant|grants`: the admin API of a running gateway
 * from a terminal. The address comes from `-c FILE` (`admin.listen`, https with `admin.tls`)
 * or `--url`; the bearer token from `--token` or GATEHOUSE_TOKEN (never printed).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '@gatehouse/core';
import type { Approval, Grant } from '@gatehouse/approvals';
import { connectorModules } from './connectors.js';

export const APPROVALS_USAGE = `  approvals list -c FILE [--status S]    list approval requests (S: pending (default), approved, denied,
                                         expired, cancelled, used, all)
  approvals get ID -c FILE               one request as JSON
  approvals approve ID --reason R -c FILE
  approvals deny ID --reason R -c FILE
  approvals grant --subject S --connector C --minutes M --reason R -c FILE
  approvals grants -c FILE               list active grants
                                         (all: --url URL instead of -c; --token T or GATEHOUSE_TOKEN)
`;

type Out = { out: (s: string) => void; err: (s: string) => void };

export async function approvalsCommand(argv: string[], io: Out, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      url: { type: 'string' },
      token: { type: 'string' },
      status: { type: 'string' },
      reason: { type: 'string' },
      subject: { type: 'string' },
      connector: { type: 'string' },
      minutes: { type: 'string' },
    },
  });
  const fail = (m: string, code = 2) => {
    io.err(`gatehouse: ${m}`);
    return code;
  };
  const token = values.token ?? env.GATEHOUSE_TOKEN;
  if (!token) return fail('a token is required: --token T or GATEHOUSE_TOKEN');
  let base = values.url;
  if (!base) {
    if (!values.config) return fail('-c FILE (or --url URL) is required');
    // Only admin.listen is needed: secrets stay unresolved.
    const cfg = loadConfig(values.config, env, { secrets: false, connectors: connectorModules });
    if (!cfg.ok) return fail(cfg.error.message);
    base = `${cfg.value.admin.tls ? 'https' : 'http'}://${cfg.value.admin.listen}`;
  }
  const call = async (method: string, path: string, body?: unknown): Promise<{ ok: true; value: unknown } | { ok: false; code: number }> => {
    let res: Response;
    try {
      res = await fetch(new URL(path, base), {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(15_000),
      });
    } catch (e) {
      return { ok: false, code: fail(`cannot reach the gateway at ${base}: ${(e as Error).message}`, 1) };
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON: shown as is */
    }
    if (!res.ok) {
      const detail = (json as { detail?: string } | null)?.detail ?? text.slice(0, 200);
      return { ok: false, code: fail(`${res.status}: ${detail}`, 1) };
    }
    return { ok: true, value: json };
  };
  const id = positionals[0];
  switch (sub) {
    case 'list': {
      const r = await call('GET', `/api/v1/approvals?status=${encodeURIComponent(values.status ?? 'pending')}`);
      if (!r.ok) return r.code;
      io.out(table((r.value as { approvals: Approval[] }).approvals));
      return 0;
    }
    case 'get': {
      if (!id) return fail('approvals get needs an ID');
      const r = await call('GET', `/api/v1/approvals/${encodeURIComponent(id)}`);
      if (!r.ok) return r.code;
      io.out(JSON.stringify(r.value, null, 2));
      return 0;
    }
    case 'approve':
    case 'deny': {
      if (!id) return fail(`approvals ${sub} needs an ID`);
      if (!values.reason) return fail(`approvals ${sub} needs --reason R`);
      const r = await call('POST', `/api/v1/approvals/${encodeURIComponent(id)}/${sub}`, { reason: values.reason });
      if (!r.ok) return r.code;
      const a = r.value as Approval;
      io.out(`${a.id}: ${a.status} (${a.approvals.length}/${a.required} approvals)`);
      return 0;
    }
    case 'grant': {
      const minutes = Number(values.minutes);
      if (!values.subject || !values.connector || !values.reason || !Number.isInteger(minutes)) {
        return fail('approvals grant needs --subject S --connector C --minutes M --reason R');
      }
      const r = await call('POST', '/api/v1/grants', { subject: values.subject, connector: values.connector, minutes, reason: values.reason });
      if (!r.ok) return r.code;
      const g = r.value as Grant;
      io.out(`grant ${g.id}: ${g.subject} on ${g.connector} until ${g.expiresAt}`);
      return 0;
    }
    case 'grants': {
      const r = await call('GET', '/api/v1/grants');
      if (!r.ok) return r.code;
      const rows = (r.value as { grants: Grant[] }).grants.map((g) => [g.id, g.subject, g.connector, g.expiresAt, g.grantedBy, g.reason]);
      io.out(columns([['ID', 'SUBJECT', 'CONNECTOR', 'UNTIL', 'BY', 'REASON'], ...rows]));
      return 0;
    }
  }
  return fail(`unknown approvals command "${sub ?? ''}"\n${APPROVALS_USAGE}`);
}

function table(list: Approval[]): string {
  if (list.length === 0) return 'no approval requests';
  const rows = list.map((a) => [a.id, a.status, a.connector, a.requester.subject, a.rule, `${a.approvals.length}/${a.required}`, a.expiresAt, oneLine(a.unit.text, 60)]);
  return columns([['ID', 'STATUS', 'CONNECTOR', 'REQUESTER', 'RULE', 'VOTES', 'EXPIRES', 'UNIT'], ...rows]);
}

/** Control characters never reach the terminal (a unit's text is the caller's). */
const oneLine = (s: string, max: number) => {
  const t = s.replace(/[\x00-\x1f\x7f]+/g, ' ');
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
};

function columns(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}
