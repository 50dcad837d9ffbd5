/**
 * JSON-path rules and detectors over a parsed JSON value, in one walk. Each path is a
 * small automaton: at every node we advance the live (path, segment) states; a node where
 * a path completes is masked whole by the first such rule, and its subtree is not entered.
 * Copy-on-write: untouched subtrees are returned as the same objects.
 */
import type { Segment } from './json-path.js';
import { REDACTED, type Strategy } from './strategies.js';
import { maskWithDetectors, type ActiveDetector } from './text-mask.js';

export interface PathRule {
  segments: Segment[];
  strategy: Strategy;
  nulls: boolean;
  /** Rule position: with two paths ending on one node, the earlier rule wins. */
  order: number;
}

/** Deeper than this is masked whole: fail closed rather than overflow the stack. */
export const MAX_JSON_DEPTH = 256;

export class JsonMasker {
  private readonly initial: number[];

  constructor(
    private readonly paths: readonly PathRule[],
    private readonly detectors: readonly ActiveDetector[],
  ) {
    this.initial = paths.map((_, i) => i * 0x10000); // state = path index << 16 | segment index
  }

  mask(value: unknown): { value: unknown; changed: boolean } {
    const out = this.walk(value, this.initial, 0);
    return { value: out, changed: out !== value };
  }

  private walk(node: unknown, states: number[], depth: number): unknown {
    let best: PathRule | null = null;
    for (const st of states) {
      const p = this.paths[st >>> 16];
      if ((st & 0xffff) === p.segments.length && (!best || p.order < best.order)) best = p;
    }
    if (best) return maskWhole(node, best);
    if (typeof node === 'string') return this.detectors.length ? maskWithDetectors(node, this.detectors, false) : node;
    if (typeof node === 'number') return this.detectors.length ? this.maskNumber(node) : node;
    if (node === null || typeof node !== 'object') return node;
    if (depth >= MAX_JSON_DEPTH) return REDACTED;
    const scanLeaves = this.detectors.length > 0;
    if (Array.isArray(node)) {
      let copy: unknown[] | null = null;
      for (let i = 0; i < node.length; i++) {
        const next = this.advance(states, i);
        if (next.length === 0 && !scanLeaves) continue;
        const v = this.walk(node[i], next, depth + 1);
        if (v !== node[i]) (copy ??= node.slice())[i] = v;
      }
      return copy ?? node;
    }
    const obj = node as Record<string, unknown>;
    let copy: Record<string, unknown> | null = null;
    let renamed = false;
    for (const key in obj) {
      const next = this.advance(states, key);
      if (next.length === 0 && !scanLeaves) continue;
      const v = this.walk(obj[key], next, depth + 1);
      if (v !== obj[key]) {
        copy ??= { ...obj };
        // defineProperty: a JSON key named "__proto__" must stay a plain own property.
        Object.defineProperty(copy, key, { value: v, writable: true, enumerable: true, configurable: true });
      }
      // A value used as a key (`{"4111…": {…}}`) is data too.
      if (scanLeaves && maskWithDetectors(key, this.detectors, true) !== key) renamed = true;
    }
    if (renamed) return this.renameKeys(copy ?? obj);
    return copy ?? node;
  }

  /**
   * Integers long enough to be a card or account number are scanned as their digits. One
   * that JSON.parse could not hold exactly (beyond 2^53) has already lost its digits, so it
   * cannot be judged: it becomes `[REDACTED]` (fail closed).
   */
  private maskNumber(n: number): unknown {
    if (!Number.isInteger(n) || Math.abs(n) < 1e11) return n;
    if (!Number.isSafeInteger(n)) return REDACTED;
    const digits = String(n);
    const m = maskWithDetectors(digits, this.detectors, false);
    return m === digits ? n : m;
  }

  private renameKeys(obj: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key in obj) {
      const k = maskWithDetectors(key, this.detectors, true) as string;
      Object.defineProperty(out, k, { value: obj[key], writable: true, enumerable: true, configurable: true });
    }
    return out;
  }

  private advance(states: number[], key: string | number): number[] {
    let next: number[] | null = null;
    for (const st of states) {
      const seg = this.paths[st >>> 16].segments[st & 0xffff];
      if (!seg) continue;
      switch (seg.kind) {
        case 'child':
          if (key === seg.name) (next ??= []).push(st + 1);
          break;
        case 'index':
          if (key === seg.index) (next ??= []).push(st + 1);
          break;
        case 'any':
          (next ??= []).push(st + 1);
          break;
        case 'descendant':
          if (key === seg.name) (next ??= []).push(st + 1);
          (next ??= []).push(st); // keep looking deeper
          break;
      }
    }
    return next ?? EMPTY;
  }
}

const EMPTY: number[] = [];

function maskWhole(node: unknown, rule: PathRule): unknown {
  if (rule.nulls || node === null) return null;
  if (typeof node === 'string') return rule.strategy(node);
  if (typeof node === 'number' || typeof node === 'boolean') return rule.strategy(String(node));
  return REDACTED; // an object or array named by a path: no partial form makes sense
}
