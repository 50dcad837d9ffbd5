/**
 * Check-digit validators. They turn "looks like a number" into "is one": without them a
 * card detector would mask every 16-digit order id.
 */

/** Luhn (mod 10) over the digits of `s`; other characters are ignored. Needs 2+ digits. */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let n = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    let d = c - 48;
    if (n++ % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return n >= 2 && sum % 10 === 0;
}

/** IBAN lengths for the countries callers meet most (SEPA + a few); others: 15–34. */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AT: 20,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  TN: 24,
  TR: 26,
  UA: 29,
  VG: 24,
  XK: 20,
};

/**
 * ISO 13616: two letters, two check digits, alphanumeric BBAN; the length fits the
 * country; moving the first four characters to the end and reading letters as 10..35
 * gives a number ≡ 1 (mod 97). Spaces are ignored; letters must be upper case.
 */
export function ibanValid(input: string): boolean {
  const s = input.includes(' ') ? input.replace(/ /g, '') : input;
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const want = IBAN_LENGTHS[s.slice(0, 2)];
  if (want !== undefined ? s.length !== want : s.length < 15 || s.length > 34) return false;
  let rem = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt((k + 4) % s.length);
    if (c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else rem = (rem * 100 + (c - 55)) % 97; // A=10 … Z=35: two decimal digits
  }
  return rem === 1;
}

/**
 * US SSN by the SSA's structural rules: AAA-GG-SSSS or 9 bare digits; area not 000, 666
 * or 900–999; group not 00; serial not 0000. (No check digit exists, so 9-digit ids of
 * other kinds can pass: see docs/masking.md.)
 */
export function ssnValid(s: string): boolean {
  let d: string;
  if (s.length === 11 && s[3] === '-' && s[6] === '-') d = s.slice(0, 3) + s.slice(4, 6) + s.slice(7);
  else if (s.length === 9) d = s;
  else return false;
  if (!/^[0-9]{9}$/.test(d)) return false;
  const area = +d.slice(0, 3);
  if (area === 0 || area === 666 || area >= 900) return false;
  if (d.slice(3, 5) === '00' || d.slice(5) === '0000') return false;
  return true;
}
