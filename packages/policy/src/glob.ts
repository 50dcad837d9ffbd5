/**
 * Value matchers for rule `match:` blocks. Plain words compare case-insensitively; a
 * value with `*` is a glob: `*` = any run of characters except `/`, `**` = any run.
 */
export type ValueMatcher = (value: string) => boolean;

export interface GlobOptions {
  /** `*` matches `/` too (command lines rather than paths). Default false. */
  crossSlash?: boolean;
}

export function compileGlob(pattern: string, opts: GlobOptions = {}): ValueMatcher {
  if (!pattern.includes('*')) return plainWord(pattern);
  const star = opts.crossSlash ? '.*' : '[^/]*';
  let src = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        src += '.*';
        i++;
      } else src += star;
    } else src += c.replace(/[\\^$.|?+()[\]{}]/g, '\\$&');
  }
  const re = new RegExp(src + '$', 'is');
  return (v) => re.test(v);
}

/** Exact compare without allocating on the common paths (same case, or all upper/lower). */
function plainWord(word: string): ValueMatcher {
  const lower = word.toLowerCase();
  const upper = word.toUpperCase();
  return (v) => v === word || v === lower || v === upper || (v.length === word.length && v.toLowerCase() === lower);
}

/** Any-of over the rule's values; the unit's attribute may be a string or a list. */
export function compileAnyOf(values: string | string[], opts: GlobOptions = {}): (attr: string | string[] | undefined) => boolean {
  const list = Array.isArray(values) ? values : [values];
  const matchers = list.map((v) => compileGlob(v, opts));
  const one = (v: string): boolean => {
    for (const m of matchers) if (m(v)) return true;
    return false;
  };
  return (attr) => {
    if (attr === undefined) return false; // a key the unit does not have never matches
    if (typeof attr === 'string') return one(attr);
    for (const v of attr) if (one(v)) return true;
    return false;
  };
}
