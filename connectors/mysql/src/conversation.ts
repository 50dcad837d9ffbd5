/**
 * The state both directions of one MySQL conversation share: the prepared statements, and
 * the FIFO of commands whose responses are still expected. MySQL answers commands strictly in
 * order; each command's packets carry sequence ids counting up from 0 (the command) in both
 * directions, so every packet is checked against the command it belongs to, and a packet out
 * of sequence, or one that does not fit the response in progress, closes the session.
 */
import type { Decision, Judgement, Recorded, Unit } from '@gatehouse/core';
import type { OkPacket } from './packet.js';
import type { Column, ResultShape } from './result-shape.js';

export interface Stmt {
  id: number;
  text: string;
  unit: Unit;
  decision: Decision;
  params: number;
  columns: number;
  /** Parameter types from the last execute that sent them (2 bytes each). */
  types: Buffer | null;
  /** COM_STMT_SEND_LONG_DATA received since the last execute, per parameter (capped, for the audit). */
  longData: Map<number, Buffer>;
  /** The result shape of an open cursor (COM_STMT_FETCH rows), or null. */
  cursor: ResultShape | null;
}

export type Phase = 'first' | 'columns' | 'columns-eof' | 'rows' | 'infile';

export interface ResultState {
  phase: Phase;
  columns: Column[];
  remaining: number;
  shape: ResultShape | null;
  rows: number;
  bytes: number;
  sample: (string | null)[][] | null;
  sampleColumns: string[] | null;
}

export function newResult(phase: Phase = 'first', shape: ResultShape | null = null): ResultState {
  return { phase, columns: [], remaining: 0, shape, rows: 0, bytes: 0, sample: null, sampleColumns: null };
}

interface Seqs {
  /** Next sequence id on the caller's side of this command. */
  cseq: number;
  /** Next sequence id on the upstream's side of this command. */
  useq: number;
}

export type QueryEntry = Seqs & { kind: 'query'; judgement: Judgement; index: number; startedAt: number; r: ResultState };
export type ExecuteEntry = Seqs & { kind: 'execute'; stmt: Stmt | null; unit: Unit; decision: Decision; params: (string | null)[]; startedAt: number; r: ResultState };
export type FetchEntry = Seqs & { kind: 'fetch'; stmt: Stmt | null; unit: Unit; decision: Decision; startedAt: number; r: ResultState };
export type ResultEntry = QueryEntry | ExecuteEntry | FetchEntry;

export type PrepareEntry = Seqs & {
  kind: 'prepare';
  text: string;
  unit: Unit;
  decision: Decision;
  phase: 'first' | 'params' | 'params-eof' | 'columns' | 'columns-eof';
  stmt: Stmt | null;
  remaining: number;
};

/** A command answered by one packet: OK (or EOF) / ERR, or any one packet (COM_STATISTICS). */
export type SimpleEntry = Seqs & {
  kind: 'simple';
  reply: 'ok' | 'any';
  /** Recorded when the response arrives (COM_INIT_DB). */
  unit?: Unit;
  decision?: Decision;
  startedAt: number;
  onOk?: (ok: OkPacket | null) => void;
  /** The gateway's own command (change user): the response is not relayed. */
  internal?: (payload: Buffer) => void;
};

export type FieldListEntry = Seqs & { kind: 'field-list'; unit: Unit; decision: Decision; startedAt: number; bytes: number };

/** The gateway's own answer (a refusal), sent when it reaches the head of the FIFO. */
export type LocalEntry = Seqs & { kind: 'local'; payload: Buffer; recorded: Recorded | null };

export type Entry = ResultEntry | PrepareEntry | SimpleEntry | FieldListEntry | LocalEntry;
