/**
 * The JSONPath subset masking rules use: `$.a.b`, `$.a[*].b`, `$.a[0]`, `$..name`,
 * `$['a-b']`, `$.a.*`. Parsed once at compile time into segments that the masking walk
 * advances through node by node (see json-mask.ts).
 */
import type { Result } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';

export type Segment =
  | { kind: 'child'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'any' }
  /** `..name`: `name` at this level or any depth below. */
  | { kind: 'descendant'; name: string };

const NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

export function parseJsonPath(path: string): Result<Segment[]> {
  if (!path.startsWith('$')) return err('masking.config', `JSON path "${path}" must start with $`);
  const segs: Segment[] = [];
  let i = 1;
  const fail = (why: string) => err('masking.config', `JSON path "${path}": ${why} at offset ${i}`);
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      i += 2;
      const m = NAME.exec(path.slice(i));
      if (!m) return fail('expected a name after ..');
      segs.push({ kind: 'descendant', name: m[0] });
      i += m[0].length;
    } else if (path[i] === '.') {
      i++;
      if (path[i] === '*') {
        segs.push({ kind: 'any' });
        i++;
        continue;
      }
      const m = NAME.exec(path.slice(i));
      if (!m) return fail('expected a name after .');
      segs.push({ kind: 'child', name: m[0] });
      i += m[0].length;
    } else if (path[i] === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) return fail('unclosed [');
      const inner = path.slice(i + 1, close).trim();
      if (inner === '*') segs.push({ kind: 'any' });
      else if (/^[0-9]+$/.test(inner)) segs.push({ kind: 'index', index: Number(inner) });
      else if (/^'[^']*'$/.test(inner) || /^"[^"]*"$/.test(inner)) segs.push({ kind: 'child', name: inner.slice(1, -1) });
      else return fail(`unsupported selector [${inner}]`);
      i = close + 1;
    } else return fail(`unexpected "${path[i]}"`);
  }
  if (segs.length === 0) return err('masking.config', `JSON path "${path}" selects the whole document; name a field`);
  return ok(segs);
}
