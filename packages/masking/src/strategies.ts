/**
 * Masking strategies (`with:`): what a sensitive value becomes. Each is a function of the
 * whole sensitive value (a column value, a JSON leaf, or one detector hit in a text).
 */
import { createHmac } from 'node:crypto';

export type StrategyName = 'redact' | 'last4' | 'email' | 'hash' | 'null';
export const STRATEGY_NAMES: readonly StrategyName[] = ['redact', 'last4', 'email', 'hash', 'null'];

/** A strategy; null means "replace with NULL" (SQL NULL / JSON null). */
export type Strategy = (value: string) => string | null;

export const REDACTED = '[REDACTED]';

const redact: Strategy = () => REDACTED;
const toNull: Strategy = () => null;

/**
 * Every alphanumeric but the last four becomes `*`; separators stay, so the shape of a
 * card or account number remains readable. A value with four or fewer alphanumerics is
 * masked entirely: "the last four" of a PIN would be the PIN.
 */
export const last4: Strategy = (v) => {
  let alnum = 0;
  for (let i = 0; i < v.length; i++) if (isAlnum(v.charCodeAt(i))) alnum++;
  const keep = alnum > 4 ? 4 : 0;
  let seen = 0;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!isAlnum(c)) out += v[i];
    else out += ++seen > alnum - keep ? v[i] : '*';
  }
  return out;
};

/** `jane.doe@example.com` → `j***@example.com`; anything that is not an address is redacted. */
export const emailMask: Strategy = (v) => {
  const at = v.lastIndexOf('@');
  if (at < 1 || at === v.length - 1) return REDACTED;
  return `${v[0]}***${v.slice(at)}`;
};

/**
 * `sha256:` + 16 hex of HMAC-SHA256(key, value): equal values stay joinable across rows
 * without being reversible by a dictionary attack that lacks the gateway's key.
 */
export function hashStrategy(key: Buffer): Strategy {
  return (v) => 'sha256:' + createHmac('sha256', key).update(v, 'utf8').digest('hex').slice(0, 16);
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127;
}

export function strategyFor(name: StrategyName, hashKey: Buffer | undefined): Strategy | null {
  switch (name) {
    case 'redact':
      return redact;
    case 'last4':
      return last4;
    case 'email':
      return emailMask;
    case 'null':
      return toNull;
    case 'hash':
      return hashKey ? hashStrategy(hashKey) : null;
    default:
      return null;
  }
}
