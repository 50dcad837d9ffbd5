/**
 * Detectors find sensitive values inside free text. Each has a prefilter — a check
 * cheaper than its regex that rules out most text (no '@' → no e-mail) — so scanning
 * ordinary rows costs a few character comparisons. Regexes are bounded (no nested
 * unbounded repetition) so a hostile value cannot make matching quadratic.
 */
import { IBAN_LENGTHS, ibanValid, luhnValid, ssnValid } from './checksums.js';

export type DetectorName = 'credit_card' | 'iban' | 'ssn' | 'email' | 'jwt' | 'aws_key' | 'gcp_key' | 'github_token';

export interface Span {
  start: number;
  end: number;
}

export interface Detector {
  name: DetectorName;
  /** Spans of `text` holding a value of this kind, ascending, non-overlapping. */
  find(text: string): readonly Span[];
}

const NONE: readonly Span[] = Object.freeze([]);

/** At least `n` ASCII digits in `text` (stops counting as soon as it knows). */
function hasDigits(text: string, n: number): boolean {
  let c = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57 && ++c >= n) return true;
  }
  return false;
}

/**
 * A detector from a prefilter, a global regex and an optional validator of the match.
 * The regex is module-owned and used synchronously, so resetting lastIndex is safe.
 */
function regexDetector(name: DetectorName, prefilter: (text: string) => boolean, re: RegExp, accept?: (m: string) => Span | boolean): Detector {
  return {
    name,
    find(text) {
      if (!prefilter(text)) return NONE;
      let out: Span[] | null = null;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const verdict = accept ? accept(m[0]) : true;
        if (verdict === false) continue;
        const span = verdict === true ? { start: m.index, end: m.index + m[0].length } : { start: m.index + verdict.start, end: m.index + verdict.end };
        (out ??= []).push(span);
      }
      return out ?? NONE;
    },
  };
}

/** 13–19 digits, single spaces or dashes allowed between digits, not inside a longer number. */
const CARD = /(?<![0-9][ -]?)[0-9](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])/g;
const creditCard = regexDetector(
  'credit_card',
  (t) => hasDigits(t, 13),
  CARD,
  (m) => luhnValid(m),
);

/**
 * Country code, check digits, BBAN; printed IBANs come in groups of four separated by
 * single spaces. The regex may run past the IBAN into a following word, so the match is
 * cut to the country's length before validating.
 */
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}/g;
const iban = regexDetector(
  'iban',
  (t) => t.length >= 15 && hasDigits(t, 4),
  IBAN,
  (m) => {
    const compact = m.replace(/ /g, '');
    const lengths: number[] = [];
    const want = IBAN_LENGTHS[compact.slice(0, 2)];
    if (want) lengths.push(want);
    else for (let l = Math.min(34, compact.length); l >= 15; l--) lengths.push(l);
    for (const l of lengths) {
      if (compact.length < l || !ibanValid(compact.slice(0, l))) continue;
      // Map the compact length back onto the original (spaced) text.
      let seen = 0;
      let end = 0;
      while (seen < l) if (m.charCodeAt(end++) !== 32) seen++;
      if (end < m.length && /[A-Za-z0-9]/.test(m[end])) continue; // ends inside a word
      return { start: 0, end };
    }
    return false;
  },
);

/** AAA-GG-SSSS or 9 bare digits, not part of a longer number. */
const SSN = /(?<![0-9-])(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{9})(?![0-9-])/g;
const ssn = regexDetector('ssn', (t) => hasDigits(t, 9), SSN, ssnValid);

/** Local part ≤ 64, labels ≤ 63, ≤ 8 labels: bounded so scanning stays linear. */
const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;
const email = regexDetector('email', (t) => t.includes('@'), EMAIL);

/** header.payload.signature, base64url, header JSON starting `{"` → `eyJ`. Signature may be empty (alg none). */
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const jwt = regexDetector('jwt', (t) => t.includes('eyJ'), JWT);

const AWS = /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;
const awsKey = regexDetector('aws_key', (t) => t.includes('AKIA') || t.includes('ASIA'), AWS);

const GCP = /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g;
const gcpKey = regexDetector('gcp_key', (t) => t.includes('AIza'), GCP);

/** Classic tokens (ghp_ gho_ ghu_ ghs_ ghr_ + 36) and fine-grained `github_pat_…`. */
const GITHUB = /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/g;
const githubToken = regexDetector('github_token', (t) => t.includes('gh'), GITHUB);

export const detectors: Readonly<Record<DetectorName, Detector>> = Object.freeze({
  credit_card: creditCard,
  iban,
  ssn,
  email,
  jwt,
  aws_key: awsKey,
  gcp_key: gcpKey,
  github_token: githubToken,
});
