/**
 * Text renderings of binary-format result values, so that a masking rule (which works on
 * text) can judge them. Used only for columns that have a mask: if the mask leaves the
 * text unchanged the original bytes pass; otherwise a binary value that cannot carry the
 * masked text becomes NULL. A type with no rendering here returns undefined (→ NULL).
 */

/** Types whose binary form is their text form (UTF-8 bytes). */
export const TEXTUAL_OIDS = new Set<number>([
  25, // text
  1043, // varchar
  1042, // bpchar
  19, // name
  18, // "char"
  705, // unknown
  114, // json
  142, // xml
]);
export const JSONB_OID = 3802;

const PG_EPOCH_MS = 946_684_800_000;

export function binaryToText(oid: number, b: Buffer, start: number, end: number): string | undefined {
  const len = end - start;
  switch (oid) {
    case 16:
      return len === 1 ? (b[start] ? 't' : 'f') : undefined;
    case 21:
      return len === 2 ? String(b.readInt16BE(start)) : undefined;
    case 23:
      return len === 4 ? String(b.readInt32BE(start)) : undefined;
    case 26:
      return len === 4 ? String(b.readUInt32BE(start)) : undefined;
    case 20:
      return len === 8 ? b.readBigInt64BE(start).toString() : undefined;
    case 700:
      return len === 4 ? String(b.readFloatBE(start)) : undefined;
    case 701:
      return len === 8 ? String(b.readDoubleBE(start)) : undefined;
    case 2950:
      return len === 16 ? uuid(b.toString('hex', start, end)) : undefined;
    case 1082:
      return len === 4 ? isoDate(PG_EPOCH_MS + b.readInt32BE(start) * 86_400_000, 10) : undefined;
    case 1114:
    case 1184:
      return len === 8 ? isoDate(PG_EPOCH_MS + Number(b.readBigInt64BE(start) / 1000n), 23) : undefined;
    case 1700:
      return numeric(b, start, end);
    default:
      return undefined;
  }
}

function uuid(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function isoDate(ms: number, chars: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? 'infinity' : d.toISOString().slice(0, chars);
}

/** numeric: int16 ndigits, weight, sign, dscale, then base-10000 digits. */
function numeric(b: Buffer, start: number, end: number): string | undefined {
  if (end - start < 8) return undefined;
  const ndigits = b.readInt16BE(start);
  const weight = b.readInt16BE(start + 2);
  const sign = b.readUInt16BE(start + 4);
  const dscale = b.readInt16BE(start + 6);
  if (ndigits < 0 || end - start !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  const digit = (i: number) => (i >= 0 && i < ndigits ? b.readInt16BE(start + 8 + 2 * i) : 0);
  let int = '';
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, '0');
  if (int === '') int = '0';
  let frac = '';
  for (let k = 1; k * 4 < dscale + 4; k++) frac += String(digit(weight + k)).padStart(4, '0');
  frac = frac.slice(0, dscale);
  return (sign === 0x4000 ? '-' : '') + int + (frac ? '.' + frac : '');
}
