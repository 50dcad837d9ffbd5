/**
 * Small text helpers for procedural bodies (PL/pgSQL). The bodies themselves are parsed by
 * the real PL/pgSQL parser (@libpg-query/parser `parsePlPgSQLSync`); these only prepare its
 * input and split what it hands back.
 */

/**
 * A dollar-quote tag (`$gh$`, `$gh1$`, …) such that `tag + body + tag` is one dollar-quoted
 * string: the tag does not occur in the body, nor straddle its end.
 */
export function dollarTag(body: string): string {
  for (let i = 0; ; i++) {
    const tag = `$gh${i || ''}$`;
    if ((body + tag).indexOf(tag) === body.length) return tag;
  }
}

/**
 * A PL/pgSQL assignment as the parser hands it back (`target := expr`, `rec.f = expr`,
 * `arr[i + 1] := expr`): split at the first `:=` or `=` outside quotes and subscripts.
 * null if there is none (the caller then treats the body as opaque).
 */
export function splitAssignment(text: string): { target: string; value: string } | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) return null;
      i = end; // a doubled quote ('' or "") just reopens: the next iteration handles it
      continue;
    }
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (depth === 0 && c === ':' && text[i + 1] === '=') return { target: text.slice(0, i).trim(), value: text.slice(i + 2).trim() };
    else if (depth === 0 && c === '=') return { target: text.slice(0, i).trim(), value: text.slice(i + 1).trim() };
  }
  return null;
}
