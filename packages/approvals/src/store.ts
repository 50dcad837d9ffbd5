/**
 * Where requests and grants live: SQLite in data_dir (one gateway) or PostgreSQL (several).
 * Every state change goes through `modify`, an atomic read-modify-write, so that two
 * reviewers (or two gateways, or a reviewer and the expiry sweep) never both win.
 */
import type { ApprovalRecord, ApprovalStatus, GrantRecord } from './types.js';

/** `fn` returns the new record, or an error value that leaves the row as it was. */
export type Modify<E> = (r: ApprovalRecord) => ApprovalRecord | { error: E };

export interface ApprovalStore {
  readonly kind: 'sqlite' | 'postgres';
  insert(r: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | null>;
  /** Newest first, at most `limit`. */
  list(status: ApprovalStatus | 'all', limit: number): Promise<ApprovalRecord[]>;
  countPending(subject: string, issuer: string, now: number): Promise<number>;
  /** The newest unexpired approved (or pending, if `pending`) request for exactly this unit. */
  findOpen(subject: string, issuer: string, connector: string, unitHash: string, now: number): Promise<ApprovalRecord | null>;
  /** Atomic; null when there is no such request. */
  modify<E>(id: string, fn: Modify<E>): Promise<ApprovalRecord | { error: E } | null>;
  /** Ids of pending / approved requests past their expiry. */
  due(now: number, limit: number): Promise<string[]>;
  insertGrant(g: GrantRecord): Promise<void>;
  activeGrant(subject: string, connector: string, now: number): Promise<GrantRecord | null>;
  listGrants(now: number, limit: number): Promise<GrantRecord[]>;
  /** Tell other gateways sharing the store that a request changed (no-op for SQLite). */
  announce(id: string): Promise<void>;
  /** Called with the id of a request another gateway changed (never for our own changes). */
  onRemoteChange(cb: (id: string) => void): void;
  close(): Promise<void>;
}

export const isError = <E>(v: unknown): v is { error: E } => typeof v === 'object' && v !== null && 'error' in v;
