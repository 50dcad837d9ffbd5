/** The audit benchmarks' event: a realistic ~400-byte statement event, 64 sessions. */
import { randomUUID } from 'node:crypto';
import type { AuditEventInput } from '@gatehouse/core';

/**
 * Random like the gateway's own session ids (UUIDv4): adjacent ids would all share one page
 * of the session index and hide what a commit touches with many live sessions.
 */
const SESSIONS = Array.from({ length: 64 }, () => randomUUID());

export function makeEvent(i: number): AuditEventInput {
  return {
    time: new Date().toISOString(),
    kind: 'unit',
    connector: 'payments-db',
    protocol: 'postgres',
    session: SESSIONS[i % 64],
    identity: { subject: 'svc:billing', issuer: 'https://idp.example.com/', groups: ['payments'] },
    unit: { type: 'statement', text: 'SELECT id, amount FROM invoices WHERE customer_id = $1', params: [String(i)] },
    decision: { action: 'allow' },
    result: { status: 'SELECT 5', rows: 5, durationMs: 0.42 },
  };
}
