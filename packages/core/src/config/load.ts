/**
 * Loads gatehouse.yaml: parse, resolve `${env:NAME}` / `${file:PATH}` references,
 * validate against the schema (filling defaults), and report the first problem with
 * the key path and line. A bad file never yields a half-valid config.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { configSchema } from './schema.js';
import type { GatehouseConfig } from './types.js';
import { ok, type Result } from '../types.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly line: number | null,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `30s`, `5m`, `1h` or a bare number of ms → milliseconds; null if malformed. */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

function makeValidator() {
  const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true });
  ajv.addKeyword({
    keyword: 'duration',
    schemaType: 'boolean',
    modifying: true,
    errors: true,
    validate: function validateDuration(
      this: unknown,
      _schema: boolean,
      data: unknown,
      _parent?: unknown,
      ctx?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number },
    ) {
      const ms = parseDuration(data);
      if (ms === null) {
        (validateDuration as unknown as { errors: Partial<ErrorObject>[] }).errors = [
          { keyword: 'duration', message: 'must be a duration such as 500ms, 30s, 5m or 1h', params: {} },
        ];
        return false;
      }
      if (ctx) ctx.parentData[ctx.parentDataProperty] = ms;
      return true;
    },
  });
  return ajv.compile(configSchema);
}

let validator: ReturnType<typeof makeValidator> | undefined;

const REF = /\$\{(env|file):([^}]+)\}/g;

/** Replace `${env:…}` / `${file:…}` inside scalar strings; returns the first failure. */
function resolveReferences(doc: Document, baseDir: string, env: NodeJS.ProcessEnv): { path: string; node: Node; message: string } | null {
  let failure: { path: string; node: Node; message: string } | null = null;
  visit(doc, {
    Scalar(_key, node, path) {
      if (failure || typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(REF, (_m, kind: string, name: string) => {
        if (kind === 'env') {
          const v = env[name];
          if (v === undefined || v === '') {
            failure ??= { path: yamlPath(path, node), node, message: `environment variable ${name} is not set` };
            return '';
          }
          return v;
        }
        const file = resolve(baseDir, name);
        try {
          return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
        } catch (e) {
          failure ??= { path: yamlPath(path, node), node, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}` };
          return '';
        }
      });
    },
  });
  return failure;
}

function yamlPath(ancestors: readonly unknown[], leaf: Node): string {
  const chain = [...ancestors, leaf];
  const parts: string[] = [];
  chain.forEach((n, i) => {
    if (isPair(n)) parts.push(String(isScalar(n.key) ? n.key.value : n.key));
    else if (isSeq(n)) parts.push(`[${n.items.indexOf(chain[i + 1] as never)}]`);
  });
  return parts.join('.').replace(/\.\[/g, '[');
}

function describeAjvError(e: ErrorObject): { segments: (string | number)[]; key: string | null; message: string } {
  const segments = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  if (e.keyword === 'additionalProperties') {
    const key = String((e.params as { additionalProperty: string }).additionalProperty);
    return { segments, key, message: `unknown key "${key}"` };
  }
  if (e.keyword === 'required') {
    const key = String((e.params as { missingProperty: string }).missingProperty);
    return { segments, key: null, message: `missing required key "${key}"` };
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
    return { segments, key: null, message: `must be one of: ${allowed}` };
  }
  return { segments, key: null, message: e.message ?? 'is invalid' };
}

function formatPath(segments: (string | number)[], key: string | null): string {
  const all = key === null ? segments : [...segments, key];
  return all.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') || '(top level)';
}

function lineOf(doc: Document, lc: LineCounter, segments: (string | number)[], key: string | null): number | null {
  let node = doc.getIn(segments, true) as Node | undefined;
  if (key !== null && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    node = (pair?.key as Node | undefined) ?? node;
  }
  const offset = node?.range?.[0];
  return offset === undefined ? null : lc.linePos(offset).line;
}

export interface ParseOptions {
  /** Folder that `${file:…}` paths are relative to (default: the working directory). */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * false: leave `${env:…}`/`${file:…}` unresolved. For offline tools (audit verify,
   * export, replay) that need only `data_dir`: an auditor needs no upstream secret.
   */
  secrets?: boolean;
}

/** Parse and validate config text. `source` names the file in messages; `baseDir` anchors `${file:…}`. */
export function parseConfig(
  text: string,
  source: string,
  opts: ParseOptions = {},
): Result<GatehouseConfig, ConfigError> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = lc.linePos(e.pos[0]).line;
    return { ok: false, error: new ConfigError(`${source}:${line}: ${e.message.split('\n')[0]}`, '', line) };
  }
  const refFailure = opts.secrets === false ? null : resolveReferences(doc, opts.baseDir ?? process.cwd(), opts.env ?? process.env);
  if (refFailure) {
    const line = refFailure.node.range ? lc.linePos(refFailure.node.range[0]).line : null;
    return {
      ok: false,
      error: new ConfigError(`${source}:${line ?? '?'}: ${refFailure.path}: ${refFailure.message}`, refFailure.path, line),
    };
  }
  const data = (doc.toJS() ?? {}) as Record<string, unknown>;
  validator ??= makeValidator();
  if (!validator(data)) {
    const d = describeAjvError(validator.errors![0]!);
    const path = formatPath(d.segments, d.key);
    const line = lineOf(doc, lc, d.segments, d.key);
    return { ok: false, error: new ConfigError(`${source}:${line ?? '?'}: ${path}: ${d.message}`, path, line) };
  }
  const config = data as unknown as GatehouseConfig;
  const semantic = checkSemantics(config);
  if (semantic) {
    const line = lineOf(doc, lc, semantic.segments, null);
    const path = formatPath(semantic.segments, null);
    return { ok: false, error: new ConfigError(`${source}:${line ?? '?'}: ${path}: ${semantic.message}`, path, line) };
  }
  config.source = source;
  return ok(config);
}

/** Checks a schema cannot express: unique names, listen addresses and certificate mappings. */
function checkSemantics(c: GatehouseConfig): { segments: (string | number)[]; message: string } | null {
  // One certificate field value maps to one identity; a second entry would be ambiguous.
  const certKeys = new Set<string>();
  for (const [i, m] of (c.identity.certificates ?? []).entries()) {
    const key = m.cn !== undefined ? `cn:${m.cn}` : `uri:${m.uri}`;
    if (certKeys.has(key)) return { segments: ['identity', 'certificates', i], message: `duplicate certificate mapping ${key.replace(':', ' ')}` };
    certKeys.add(key);
  }
  const names = new Map<string, number>();
  const listens = new Map<string, string>([[c.admin.listen, 'admin']]);
  for (const [i, conn] of c.connectors.entries()) {
    if (names.has(conn.name)) return { segments: ['connectors', i, 'name'], message: `duplicate connector name "${conn.name}"` };
    names.set(conn.name, i);
    const other = conn.listen.endsWith(':0') ? undefined : listens.get(conn.listen);
    if (other) return { segments: ['connectors', i, 'listen'], message: `${conn.listen} is already used by ${other}` };
    listens.set(conn.listen, `connector "${conn.name}"`);
    // Without its own CA, node would verify client certificates against the public roots.
    if (conn.tls?.client_auth && !(conn.tls.ca && conn.tls.cert && conn.tls.key)) {
      return { segments: ['connectors', i, 'tls'], message: 'client_auth needs cert, key and ca (the CA that signs client certificates)' };
    }
    const ruleNames = new Set<string>();
    for (const [j, r] of conn.rules.entries()) {
      if (ruleNames.has(r.name)) return { segments: ['connectors', i, 'rules', j, 'name'], message: `duplicate rule name "${r.name}"` };
      ruleNames.add(r.name);
    }
  }
  return null;
}

/** Read and parse a config file; `${file:…}` paths are relative to the file's folder. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, opts: Pick<ParseOptions, 'secrets'> = {}): Result<GatehouseConfig, ConfigError> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, error: new ConfigError(`cannot read config ${file}: ${(e as Error).message}`, '', null) };
  }
  const parsed = parseConfig(text, file, { ...opts, baseDir: dirname(resolve(file)), env });
  if (parsed.ok) parsed.value.data_dir = resolve(dirname(resolve(file)), parsed.value.data_dir);
  return parsed;
}

