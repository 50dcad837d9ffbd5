/**
 * Turns one HTTP request into the protocol-neutral Unit the policy sees. What goes into
 * `match` and `context` is decided once per connector from its rules (`UnitPlan`), so a
 * connector without CEL conditions never builds header maps or parses query strings.
 */
import type { IncomingMessage } from 'node:http';
import type { RuleConfig, Unit } from '@gatehouse/core';
import type { Target } from './path.js';
import { celHeaders } from './headers.js';

export interface UnitPlan {
  /** Some rule has a CEL `when`: build `context` fully and buffer the body for `request.json`. */
  needsContext: boolean;
  /** Lower-case header names referenced by `match: { header.<name>: … }`. */
  headerKeys: string[];
}

export function planUnits(rules: readonly RuleConfig[]): UnitPlan {
  const headerKeys = new Set<string>();
  let needsContext = false;
  for (const r of rules) {
    if (r.when) needsContext = true;
    for (const k of Object.keys(r.match ?? {})) if (k.startsWith('header.')) headerKeys.add(k.slice(7).toLowerCase());
  }
  return { needsContext, headerKeys: [...headerKeys] };
}

const EMPTY: Record<string, string> = Object.freeze({});

export function buildUnit(req: IncomingMessage, method: string, t: Target, plan: UnitPlan, json: unknown): Unit {
  const text = t.query ? `${method} ${t.path}?${t.query}` : `${method} ${t.path}`;
  const match: Unit['match'] = { method, path: t.path, query: t.query, host: req.headers.host };
  for (const h of plan.headerKeys) {
    const v = req.headers[h];
    match[`header.${h}`] = Array.isArray(v) ? v.join(', ') : v;
  }
  const context = plan.needsContext
    ? { method, path: t.path, query: queryMap(t.query), headers: celHeaders(req.rawHeaders), json: json ?? null }
    : { method, path: t.path, query: EMPTY, headers: EMPTY, json: null };
  return { type: 'request', text, match, context };
}

/** Query string → map; a repeated key keeps its first value (CEL maps are single-valued). */
function queryMap(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}
