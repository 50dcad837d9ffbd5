/** Shared test fixtures: temp data dirs and realistic events. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEventInput } from '@gatehouse/core';
import Database from 'better-sqlite3';
import { openAuditLog, type AuditLog, type AuditLogOptions } from '../src/index.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function tempDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function event(i: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i)).toISOString(),
    kind: 'unit',
    connector: i % 2 ? 'payments-db' : 'billing-api',
    protocol: i % 2 ? 'postgres' : 'http',
    session: `sess-${i % 5}`,
    identity: { subject: `svc:${i % 3}`, issuer: 'https://idp.example.com/', groups: ['payments'] },
    unit: { type: 'statement', text: `SELECT * FROM accounts WHERE id = $1 -- ${i}`, params: ['***'] },
    decision: { action: 'allow' },
    result: { status: 'SELECT 1', rows: 1, durationMs: 0.25 },
    meta: { peer: '127.0.0.1:5555', tls: false },
    ...over,
  };
}

/** Opens a log that the test closes on teardown (close() twice is harmless). */
export async function open(t: Teardown, dataDir: string, over: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  const log = await openAuditLog({ dataDir, durability: 'strict', windowMs: 5, checkpointIntervalSec: 3600, origin: 'gatehouse.test/audit', ...over });
  t.teardown(() => log.close());
  return log;
}

export async function appendMany(log: AuditLog, n: number, from = 0): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => log.append(event(from + i))));
}

/** Polls `cond` every 20 ms, at most `ms`: a bounded wait, never a timing assertion. */
export async function waitFor(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** A fresh data dir (removed at teardown) holding a closed log of `n` events; returns the dir and the closed log. */
export async function closedLog(t: Teardown, n: number, over: Partial<AuditLogOptions> = {}): Promise<{ dir: string; log: AuditLog }> {
  const dir = tempDir(t);
  const log = await open(t, dir, over);
  await appendMany(log, n);
  await log.close();
  return { dir, log };
}

/** Edits the closed log through a SQLite connection of its own, as an insider with file access would. */
export function tamper(dir: string, edit: (db: Database.Database) => void): void {
  const db = new Database(join(dir, 'audit.db'));
  try {
    edit(db);
  } finally {
    db.close();
  }
}
