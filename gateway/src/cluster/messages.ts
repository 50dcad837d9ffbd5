/**
 * The messages between the primary and its connection workers (node:cluster IPC, `advanced`
 * serialization: structured clone, as the audit writer thread gets them). One shape per
 * direction; `t` names the kind. Nothing unmasked crosses: events are built and masked in
 * the worker's Session before they are sent.
 */
import type { AuditEventInput, GatehouseConfig } from '@gatehouse/core';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/** One event a primary could not take: its index in the batch, the error code and message. */
export type RefusedEvent = [index: number, code: string, message: string];

/** What a worker reports about itself for /healthz. */
export interface WorkerReport {
  /** Open caller connections per connector. */
  connections: Record<string, number>;
  /** The worker's audit sink failure, if it refuses work. */
  failure: string | null;
}

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type ToWorker =
  /** The first message: which worker this is and the validated config (secrets resolved). */
  | { t: 'start'; index: number; config: GatehouseConfig; logLevel: string }
  /** Outcome of an awaited batch: a sequence number per event (0 where refused). */
  | { t: 'acked'; id: number; seqs: number[]; refused: RefusedEvent[] }
  /** Detached batches up to `id` reached the audit log (nobody awaits them: coalesced). */
  | { t: 'received'; upTo: number }
  /** The audit log in the primary failed: refuse all work from now on. */
  | { t: 'audit-failed'; message: string }
  /** A CancelRequest another worker received for a key this worker issued. */
  | { t: 'cancel'; connector: string; pid: number; secret: number }
  | { t: 'report'; req: number }
  | { t: 'metrics'; req: number }
  /** Stop accepting, drain for up to drainMs, flush the audit sink, exit. */
  | { t: 'stop'; drainMs: number };

export type FromWorker =
  /** The worker's module is loaded and listens for messages (one sent earlier would be lost). */
  | { t: 'hello' }
  | { t: 'listening'; addresses: [name: string, address: string][] }
  | { t: 'start-failed'; message: string }
  /** `detached`: no event of the batch is awaited (batched durability), ack receipt only. */
  | { t: 'audit'; id: number; events: AuditEventInput[]; detached: boolean }
  | { t: 'cancel'; connector: string; owner: number; pid: number; secret: number }
  | { t: 'report'; req: number; report: WorkerReport }
  | { t: 'metrics'; req: number; metrics: MetricsJson }
  | { t: 'stopped' };

const TO_WORKER = new Set(['start', 'acked', 'received', 'audit-failed', 'cancel', 'report', 'metrics', 'stop']);
const FROM_WORKER = new Set(['hello', 'listening', 'start-failed', 'audit', 'cancel', 'report', 'metrics', 'stopped']);

/** A message of ours (the channel also carries node's own cluster messages, and nothing else may be trusted blindly). */
export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && TO_WORKER.has((m as { t?: unknown }).t as string);
}

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && FROM_WORKER.has((m as { t?: unknown }).t as string);
}
