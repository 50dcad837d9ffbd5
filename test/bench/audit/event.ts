/** The audit benchmarks' event: a realistic ~400-byte statement event, 64 sessions. */
import type { AuditEventInput } from '@gatehouse/core';

export function makeEvent(i: number): AuditEventInput {
  return {
    time: new Date().toISOString(),
    kind: 'unit',
    connector: 'payments-db',
    protocol: 'postgres',
    session: `0b7d9c1e-3f4a-4e2b-9a51-${String(i % 64).padStart(12, '0')}`,
    identity: { subject: 'svc:billing', issuer: 'https://idp.example.com/', groups: ['payments'] },
    unit: { type: 'statement', text: 'SELECT id, amount FROM invoices WHERE customer_id = $1', params: [String(i)] },
    decision: { action: 'allow' },
    result: { status: 'SELECT 5', rows: 5, durationMs: 0.42 },
  };
}
