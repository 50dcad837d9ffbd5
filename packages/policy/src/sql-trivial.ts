/**
 * "Trivial" WHERE clauses: predicates that are true for every row no matter what the table
 * holds (`true`, `1=1`, `'a'='a'`, `id=id`, `NOT false`, `true OR x`, casts of those…). A
 * DELETE/UPDATE with such a WHERE is a DELETE/UPDATE without one, so a `where: absent` rule
 * matches it too. This is a small constant folder over the raw parse tree: it proves "true"
 * for the forms below and says "unknown" for everything else (never guesses "true").
 */
type Obj = Record<string, unknown>;

/** A folded value: a boolean, number or string constant, SQL NULL, or unknown (undefined). */
type Val = boolean | number | string | null | undefined;

/** True only if `node` is a predicate that is true for every row (see the module comment). */
export function isTrivialPredicate(node: unknown): boolean {
  return fold(node, 0) === true;
}

const MAX_DEPTH = 64;

function fold(node: unknown, depth: number): Val {
  if (depth > MAX_DEPTH || node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const n = node as Obj;
  if (n.A_Const) return constant(n.A_Const as Obj);
  if (n.TypeCast) {
    const c = n.TypeCast as Obj;
    return cast(fold(c.arg, depth + 1), typeNameOf(c.typeName));
  }
  if (n.BoolExpr) return boolExpr(n.BoolExpr as Obj, depth);
  if (n.A_Expr) return aExpr(n.A_Expr as Obj, depth);
  if (n.NullTest) {
    const t = n.NullTest as Obj;
    const v = fold(t.arg, depth + 1);
    if (v === undefined) return undefined;
    return t.nulltesttype === 'IS_NULL' ? v === null : v !== null;
  }
  if (n.BooleanTest) {
    const t = n.BooleanTest as Obj;
    const v = fold(t.arg, depth + 1);
    if (v !== true && v !== false && v !== null) return undefined;
    switch (t.booltesttype) {
      case 'IS_TRUE':
        return v === true;
      case 'IS_NOT_TRUE':
        return v !== true;
      case 'IS_FALSE':
        return v === false;
      case 'IS_NOT_FALSE':
        return v !== false;
      case 'IS_UNKNOWN':
        return v === null;
      case 'IS_NOT_UNKNOWN':
        return v !== null;
    }
    return undefined;
  }
  if (n.SubLink) {
    // EXISTS (SELECT <anything>) with no FROM / WHERE / HAVING / LIMIT returns one row: true.
    const s = n.SubLink as Obj;
    const sel = (s.subselect as Obj | undefined)?.SelectStmt as Obj | undefined;
    if (
      s.subLinkType === 'EXISTS_SUBLINK' &&
      sel &&
      (!sel.op || sel.op === 'SETOP_NONE') &&
      !sel.fromClause &&
      !sel.whereClause &&
      !sel.havingClause &&
      !sel.limitCount &&
      !sel.limitOffset &&
      !sel.valuesLists &&
      !sel.groupClause
    )
      return true;
    return undefined;
  }
  return undefined;
}

function constant(c: Obj): Val {
  if (c.isnull) return null;
  if (c.boolval) return (c.boolval as Obj).boolval === true; // false is an empty object
  if (c.ival) return Number((c.ival as Obj).ival ?? 0); // 0 is an empty object
  if (c.fval) {
    const f = Number((c.fval as Obj).fval);
    return Number.isFinite(f) ? f : undefined;
  }
  if (c.sval) {
    const v = (c.sval as Obj).sval;
    return typeof v === 'string' ? v : '';
  }
  return undefined; // bit strings and anything new
}

function typeNameOf(t: unknown): string {
  const names = ((t as Obj | undefined)?.names ?? []) as { String?: { sval?: string } }[];
  if ((t as Obj | undefined)?.arrayBounds) return '';
  return names.length ? (names[names.length - 1].String?.sval ?? '') : '';
}

const NUMERIC_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'int', 'integer', 'bigint', 'smallint', 'decimal', 'real']);
const TEXT_TYPES = new Set(['text', 'varchar', 'name']);
// PostgreSQL's boolin: unique prefixes of true/false/yes/no, plus on/off/1/0, case-insensitive.
const TRUE_WORDS = new Set(['t', 'tr', 'tru', 'true', 'y', 'ye', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0']);

function cast(v: Val, type: string): Val {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (type === 'bool' || type === 'boolean') {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isInteger(v) ? v !== 0 : undefined;
    const s = v.trim().toLowerCase();
    return TRUE_WORDS.has(s) ? true : FALSE_WORDS.has(s) ? false : undefined;
  }
  if (NUMERIC_TYPES.has(type)) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(v)) return Number(v);
    return undefined;
  }
  if (TEXT_TYPES.has(type)) return typeof v === 'boolean' ? String(v) : typeof v === 'number' ? undefined : v;
  return undefined; // any other type (citext, domains, …) may compare differently
}

function boolExpr(b: Obj, depth: number): Val {
  const args = (b.args ?? []) as unknown[];
  if (b.boolop === 'NOT_EXPR') {
    const v = fold(args[0], depth + 1);
    return v === true ? false : v === false ? true : v === null ? null : undefined;
  }
  const and = b.boolop === 'AND_EXPR';
  if (!and && b.boolop !== 'OR_EXPR') return undefined;
  let result: Val = and;
  for (const a of args) {
    const v = fold(a, depth + 1);
    if (v === !and) return !and; // AND with a false arm / OR with a true arm decides
    if (v === undefined) result = undefined;
    else if (v === null && result !== undefined) result = null;
    else if (v !== and && result !== undefined && result !== null) result = undefined; // a non-boolean
  }
  return result;
}

const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

function aExpr(e: Obj, depth: number): Val {
  const names = (e.name ?? []) as { String?: { sval?: string } }[];
  const op = names.length === 1 ? names[0].String?.sval : undefined;
  switch (e.kind) {
    case 'AEXPR_OP': {
      if (!op) return undefined;
      const l = fold(e.lexpr, depth + 1);
      const r = fold(e.rexpr, depth + 1);
      if (COMPARISONS.has(op)) {
        if (l !== undefined && r !== undefined) return compare(op, l, r);
        // x = x, x >= x, x <= x: true wherever x is not NULL; x <> x, x < x, x > x: false.
        if (sameExpression(e.lexpr, e.rexpr)) return op === '=' || op === '<=' || op === '>=';
        return undefined;
      }
      if (typeof l === 'number' && typeof r === 'number') {
        if (op === '+') return l + r;
        if (op === '-') return l - r;
        if (op === '*') return l * r;
      }
      if (op === '-' && e.lexpr === undefined && typeof r === 'number') return -r;
      return undefined;
    }
    case 'AEXPR_NOT_DISTINCT':
    case 'AEXPR_DISTINCT': {
      const same = e.kind === 'AEXPR_NOT_DISTINCT';
      if (sameExpression(e.lexpr, e.rexpr)) return same;
      const l = fold(e.lexpr, depth + 1);
      const r = fold(e.rexpr, depth + 1);
      if (l === undefined || r === undefined) return undefined;
      if (l === null || r === null) return (l === r) === same;
      const eq = compare('=', l, r);
      return eq === undefined || eq === null ? undefined : eq === same;
    }
    case 'AEXPR_IN': {
      if (op !== '=') return undefined; // NOT IN: no
      const items = ((e.rexpr as Obj | undefined)?.List as Obj | undefined)?.items as unknown[] | undefined;
      if (!items) return undefined;
      const l = fold(e.lexpr, depth + 1);
      for (const it of items) {
        if (sameExpression(e.lexpr, it)) return true;
        const r = fold(it, depth + 1);
        if (l !== undefined && r !== undefined && compare('=', l, r) === true) return true;
      }
      return undefined;
    }
  }
  return undefined;
}

function compare(op: string, l: Val, r: Val): Val {
  if (l === null || r === null) return null;
  if (l === undefined || r === undefined) return undefined;
  // An untyped literal compared with a number is read as a number, as PostgreSQL would.
  if (typeof l === 'number' && typeof r === 'string') r = cast(r, 'numeric');
  else if (typeof l === 'string' && typeof r === 'number') l = cast(l, 'numeric');
  else if (typeof l === 'boolean' && typeof r === 'string') r = cast(r, 'bool');
  else if (typeof l === 'string' && typeof r === 'boolean') l = cast(l, 'bool');
  if (l === undefined || r === undefined || l === null || r === null || typeof l !== typeof r) return undefined;
  switch (op) {
    case '=':
      return l === r;
    case '<>':
    case '!=':
      return l !== r;
  }
  if (typeof l === 'string') return undefined; // ordering depends on the collation
  switch (op) {
    case '<':
      return l < r;
    case '>':
      return l > r;
    case '<=':
      return l <= r;
    case '>=':
      return l >= r;
  }
  return undefined;
}

/**
 * Structural equality of two expressions, ignoring source locations, limited to column
 * references, constants, casts and operators (no function calls: `random() = random()`
 * is not a tautology).
 */
function sameExpression(a: unknown, b: unknown, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  if (a === b) return a !== undefined;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameExpression(a[i], b[i], depth + 1)) return false;
    return true;
  }
  const ka = Object.keys(a).filter((k) => k !== 'location');
  const kb = Object.keys(b).filter((k) => k !== 'location');
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (k.charCodeAt(0) >= 65 && k.charCodeAt(0) <= 90 && !SAME_OK.has(k)) return false;
    if (!sameExpression((a as Obj)[k], (b as Obj)[k], depth + 1)) return false;
  }
  return true;
}

/** Node types sameExpression may compare (anything else, e.g. FuncCall or SubLink, is never "the same"). */
const SAME_OK = new Set(['ColumnRef', 'String', 'A_Star', 'A_Const', 'TypeCast', 'A_Expr', 'A_Indirection', 'A_Indices', 'List', 'Integer', 'Float', 'Boolean']);
