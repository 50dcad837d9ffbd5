/**
 * COM_STMT_EXECUTE parameters as text, for the audit event only (the Session masks them with
 * the caller's detectors before they are written). Never used to decide anything: a packet
 * whose parameters cannot be read is forwarded as received and audited as `<unreadable>`.
 */
import { Reader } from './packet.js';
import type { Stmt } from './conversation.js';
import { binaryText, skipBinaryValue, type Column } from './result-shape.js';

const PARAM_CAP = 256;

export function readParams(b: Buffer, stmt: Stmt): { params: (string | null)[]; types: Buffer | null } {
  const n = stmt.params;
  if (n === 0) return { params: [], types: null };
  try {
    const r = new Reader(b, 1 + 4 + 1 + 4);
    const bitmap = r.bytes((n + 7) >> 3);
    const bound = r.u8();
    let types = stmt.types;
    let fresh: Buffer | null = null;
    if (bound === 1) {
      fresh = Buffer.from(r.bytes(2 * n));
      types = fresh;
    }
    if (!types) return { params: new Array<string | null>(n).fill('<unreadable>'), types: null };
    const out = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      if (bitmap[i >> 3] & (1 << (i & 7))) {
        out[i] = null;
        continue;
      }
      const long = stmt.longData.get(i);
      if (long) {
        out[i] = cap(long.toString('utf8'));
        continue;
      }
      const type = types[2 * i];
      const unsigned = (types[2 * i + 1] & 0x80) !== 0;
      const col: Column = { schema: '', table: '', orgTable: '', name: '', orgName: '', charset: 33, type, flags: unsigned ? 32 : 0, decimals: 0 };
      const start = skipBinaryValue(r, type);
      out[i] = cap(binaryText(col, b, start, r.pos));
    }
    return { params: out, types: fresh };
  } catch {
    return { params: new Array<string | null>(n).fill('<unreadable>'), types: null };
  }
}

function cap(s: string): string {
  return s.length > PARAM_CAP ? s.slice(0, PARAM_CAP) + '…' : s;
}
