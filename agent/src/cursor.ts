/**
 * A sink's durable cursor: the last seq it has durably shipped, the verified chain state at
 * that point (so verification resumes there without re-reading the prefix), the newest
 * checkpoint it shipped (rollback detection), and sink-specific resume data.
 */
import { join } from 'node:path';
import { INITIAL, type ChainState } from './chain.js';
import { readDurable, writeDurable } from './state-file.js';

export interface Cursor {
  gateway_id: string;
  state: ChainState;
  checkpoint?: { size: number; root: string; note: string };
  position?: unknown;
  updated?: string;
}

export const cursorPath = (stateDir: string, sink: string) => join(stateDir, `cursor-${sink}.json`);

export function loadCursor(stateDir: string, sink: string, gatewayId: string): Cursor {
  const c = readDurable<Cursor>(cursorPath(stateDir, sink));
  if (!c) return { gateway_id: gatewayId, state: INITIAL };
  if (c.gateway_id !== gatewayId)
    throw new Error(`cursor of sink ${sink} belongs to gateway_id "${c.gateway_id}", not "${gatewayId}" (a changed gateway_id needs a new state_dir)`);
  return c;
}

export function saveCursor(stateDir: string, sink: string, c: Cursor): void {
  writeDurable(cursorPath(stateDir, sink), { ...c, updated: new Date().toISOString() });
}
