/**
 * How a refused statement is answered. The gateway does not forge the ErrorResponse: it
 * sends the upstream a `DO` block that raises SQLSTATE 42501 with the refusal message, in
 * place of the refused message. PostgreSQL then produces the error itself, so everything
 * the caller relies on is exactly what PostgreSQL would do for a real permission error:
 * the transaction block becomes failed ('E'), an implicit transaction (multi-statement
 * query, extended-protocol pipeline) is rolled back, and the rest of a pipeline up to Sync
 * is skipped. The refused statement itself never reaches the upstream.
 */
import { bindMessage, executeMessage, F, parseMessage, queryMessage } from './wire.js';

export const DENIED_SQLSTATE = '42501';
const MAX_MESSAGE = 500;

/**
 * DO block raising `text`. The text goes in an E'' literal (backslash and quote escaped, so
 * standard_conforming_strings does not matter) and `$` is dropped so that it can never
 * close the dollar-quoted body.
 */
export function raiseSql(text: string): string {
  const clean = text.slice(0, MAX_MESSAGE).replace(/\$/g, '').replace(/\\/g, '\\\\').replace(/'/g, "''");
  return `DO $gatehouse$BEGIN RAISE EXCEPTION USING ERRCODE = '${DENIED_SQLSTATE}', MESSAGE = E'${clean}'; END$gatehouse$`;
}

/** Simple protocol: one Query in place of the refused one (ErrorResponse + ReadyForQuery come back). */
export function denyQuery(text: string): Buffer {
  return queryMessage(raiseSql(text));
}

const FLUSH = Buffer.from([F.Flush, 0, 0, 0, 4]);

/**
 * Extended protocol: Parse/Bind/Execute of the DO block on the unnamed statement and portal,
 * then Flush so that the error is sent even when the caller waits without a Sync.
 */
export function denyExtended(text: string): Buffer {
  return Buffer.concat([parseMessage('', raiseSql(text)), bindMessage('', ''), executeMessage(''), FLUSH]);
}
