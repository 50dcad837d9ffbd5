/**
 * Shared pieces of the approvals end-to-end tests: identities (services, reviewers of two
 * groups, an admin), the admin API as a reviewer, the audit trail, and waits with bounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEvents } from '@gatehouse/audit';
import { parseConfig, splitHostPort } from '@gatehouse/core';
import { connectorModules, startGateway, type Gateway } from '@gatehouse/gateway';
import type { AuditEvent } from '@gatehouse/core';
import type { Approval } from '@gatehouse/approvals';

export const TOK = {
  /** svc:billing (payments): the ordinary service. */
  billing: 'tok-ap-billing-0123456789abcdef',
  /** svc:etl (payments): a second service. */
  etl: 'tok-ap-etl-0123456789abcdef',
  /** carol (dba): reviewer. */
  carol: 'tok-ap-carol-0123456789abcdef',
  /** dave (dba): reviewer. */
  dave: 'tok-ap-dave-0123456789abcdef',
  /** svc:ops (payments, dba): a service that is also a reviewer — never of its own requests. */
  ops: 'tok-ap-ops-0123456789abcdef',
  /** erin (webrev): has the reviewer role, but is not a reviewer of the database connectors. */
  erin: 'tok-ap-erin-0123456789abcdef',
  /** root (platform): admin role, in no connector's reviewers. */
  root: 'tok-ap-root-0123456789abcdef',
  /** alice (security): auditor. */
  alice: 'tok-ap-alice-0123456789abcdef',
} as const;

export const IDENTITY = `identity:
  static_tokens:
    - { token: "${TOK.billing}", subject: "svc:billing", groups: [payments] }
    - { token: "${TOK.etl}", subject: "svc:etl", groups: [payments] }
    - { token: "${TOK.carol}", subject: "carol", groups: [dba] }
    - { token: "${TOK.dave}", subject: "dave", groups: [dba] }
    - { token: "${TOK.ops}", subject: "svc:ops", groups: [payments, dba] }
    - { token: "${TOK.erin}", subject: "erin", groups: [webrev] }
    - { token: "${TOK.root}", subject: "root", groups: [platform] }
    - { token: "${TOK.alice}", subject: "alice", groups: [security] }
  roles:
    admin: { groups: [platform] }
    reviewer: { groups: [dba, webrev] }
    auditor: { groups: [security] }
`;

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

export async function api<T = unknown>(base: string, token: string, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
  const res = await fetch(new URL(path, base), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export const approve = (base: string, token: string, id: string, reason = 'checked the ticket') =>
  api<Approval>(base, token, 'POST', `/api/v1/approvals/${id}/approve`, { reason });
export const deny = (base: string, token: string, id: string, reason = 'not during business hours') =>
  api<Approval>(base, token, 'POST', `/api/v1/approvals/${id}/deny`, { reason });

/** Poll the admin API until a request matching `pick` shows up (bounded). */
export async function waitForApproval(base: string, pick: (a: Approval) => boolean, status = 'pending', ms = 10_000): Promise<Approval> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await api<{ approvals: Approval[] }>(base, TOK.carol, 'GET', `/api/v1/approvals?status=${status}`);
    const hit = r.body.approvals?.find(pick);
    if (hit) return hit;
    if (Date.now() > until) throw new Error(`no ${status} approval request appeared within ${ms} ms`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The approval.* events of a data_dir, oldest first. */
export function approvalEvents(dataDir: string): AuditEvent[] {
  return readEvents(dataDir, { limit: 10_000 }).filter((e) => e.kind.startsWith('approval.'));
}

/** Events about one request, as `kind` strings in order. */
export function kindsOf(dataDir: string, id: string): string[] {
  return approvalEvents(dataDir)
    .filter((e) => e.meta?.approval === id)
    .map((e) => e.kind);
}

export interface ApprovalsGateway {
  gw: Gateway;
  dataDir: string;
  adminUrl: string;
  address(connector: string): { host: string; port: number };
  stop(): Promise<void>;
}

/**
 * A real in-process gateway with the identities above, like test/lib's startTestGateway, but
 * with fast approvals timings (keep-alive notices, polling), so disconnects and remote
 * approvals show within a second instead of ten.
 */
export async function startApprovalsGateway(
  yaml: string,
  env: Record<string, string> = {},
  service: { keepaliveMs?: number; pollMs?: number; sweepMs?: number } = {},
): Promise<ApprovalsGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-ap-'));
  const text = `data_dir: ${JSON.stringify(dir)}\nadmin: { listen: 127.0.0.1:0 }\n${IDENTITY}\n${yaml}`;
  const parsed = parseConfig(text, 'test.yaml', { env: { ...process.env, ...env }, connectors: connectorModules });
  if (!parsed.ok) throw new Error(parsed.error.message);
  const gw = await startGateway(parsed.value, {
    logLevel: process.env.GATEHOUSE_TEST_LOG ?? 'silent',
    approvals: { service: { keepaliveMs: 300, pollMs: 200, sweepMs: 200, ...service } },
  });
  return {
    gw,
    dataDir: dir,
    adminUrl: gw.adminUrl,
    address(name) {
      const a = gw.addresses.get(name);
      if (!a) throw new Error(`no connector ${name}`);
      return splitHostPort(a);
    },
    async stop() {
      await gw.stop(2_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
