/**
 * Loads gatehouse.yaml: parse, resolve `${env:NAME}` / `${file:PATH}` references,
 * validate against the schema (filling defaults), and report the first problem with
 * the key path and line. A bad file never yields a half-valid config.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { buildConfigSchema } from './schema.js';
import { checkApprovals } from './check-approvals.js';
import { checkWorkers, isWorkersSetting, MAX_WORKERS } from './check-workers.js';
import type { ConfigProblem, GatehouseConfig, TlsConfig } from './types.js';
import type { ConnectorModule } from '../connector.js';
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
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']);
}

type KeywordErrors = { errors: Partial<ErrorObject>[] };

function makeValidator(modules: readonly ConnectorModule[]) {
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
        (validateDuration as unknown as KeywordErrors).errors = [{ keyword: 'duration', message: 'must be a duration such as 500ms, 30s, 5m or 1h', params: {} }];
        return false;
      }
      if (ctx) ctx.parentData[ctx.parentDataProperty] = ms;
      return true;
    },
  });
  // A key this build knows but cannot honour: present at all means refused, with why.
  ajv.addKeyword({
    keyword: 'unavailable',
    schemaType: 'string',
    errors: true,
    validate: function validateUnavailable(message: string) {
      (validateUnavailable as unknown as KeywordErrors).errors = [{ keyword: 'unavailable', message, params: {} }];
      return false;
    },
  });
  // `workers:` is `auto` or a count; one message for both shapes instead of anyOf's two.
  ajv.addKeyword({
    keyword: 'workerCount',
    schemaType: 'boolean',
    errors: true,
    validate: function validateWorkers(_schema: boolean, data: unknown) {
      if (isWorkersSetting(data)) return true;
      (validateWorkers as unknown as KeywordErrors).errors = [{ keyword: 'workerCount', message: `must be auto or an integer from 1 to ${MAX_WORKERS}`, params: {} }];
      return false;
    },
  });
  // A connector type no module of this build serves (mysql and ssh are not built yet).
  ajv.addKeyword({
    keyword: 'registeredType',
    schemaType: 'array',
    errors: true,
    validate: function validateType(types: string[], data: unknown) {
      if (typeof data === 'string' && types.includes(data)) return true;
      const have = types.length ? `this build has: ${types.join(', ')}` : 'this build has no connector types';
      (validateType as unknown as KeywordErrors).errors = [
        { keyword: 'registeredType', message: `connector type "${String(data)}" is not available in this build (${have})`, params: {} },
      ];
      return false;
    },
  });
  // A group selector that names nobody would be a silent no-op (an allow that allows no one).
  ajv.addKeyword({
    keyword: 'namesSomeone',
    schemaType: 'boolean',
    errors: true,
    validate: function validateSelector(_schema: boolean, data: unknown) {
      const sel = data as { groups?: unknown; subjects?: unknown } | null;
      if (sel === null || typeof sel !== 'object' || sel.groups !== undefined || sel.subjects !== undefined) return true;
      (validateSelector as unknown as KeywordErrors).errors = [{ keyword: 'namesSomeone', message: 'names nobody: give groups or subjects', params: {} }];
      return false;
    },
  });
  return ajv.compile(buildConfigSchema(modules));
}

type Validator = ReturnType<typeof makeValidator>;

/** Compiled validators by module list (element identity): hosts pass one list, tests a few. */
const validators: { modules: readonly ConnectorModule[]; validate: Validator }[] = [];

function validatorFor(modules: readonly ConnectorModule[]): Validator {
  const hit = validators.find((v) => v.modules.length === modules.length && v.modules.every((m, i) => m === modules[i]));
  if (hit) return hit.validate;
  const validate = makeValidator(modules);
  validators.push({ modules: [...modules], validate });
  return validate;
}

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
          failure ??= { path: yamlPath(path, node), node, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
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
    else if (isSeq(n)) parts.push(`[${n.items.indexOf(chain[i + 1])}]`);
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
  if (e.keyword === 'unavailable' && typeof segments.at(-1) === 'string') {
    // Point at the key itself (its line), not at the block under it.
    return { segments: segments.slice(0, -1), key: segments.at(-1) as string, message: e.message ?? 'is not available' };
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
  /**
   * The connector types this host serves, each with its own keys. A connector of any other
   * type is refused ("not available in this build"). Default: none.
   */
  connectors?: readonly ConnectorModule[];
}

/** Parse and validate config text. `source` names the file in messages; `baseDir` anchors `${file:…}`. */
export function parseConfig(text: string, source: string, opts: ParseOptions = {}): Result<GatehouseConfig, ConfigError> {
  // First: a wrong module list is the host's bug and must show whatever the file says.
  const modules = opts.connectors ?? [];
  const validator = validatorFor(modules);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
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
  if (!validator(data)) {
    const d = describeAjvError(validator.errors![0]);
    const path = formatPath(d.segments, d.key);
    const line = lineOf(doc, lc, d.segments, d.key);
    return { ok: false, error: new ConfigError(`${source}:${line ?? '?'}: ${path}: ${d.message}`, path, line) };
  }
  const config = data as unknown as GatehouseConfig;
  // Unresolved references (offline tools) are not the values a connector would see: its
  // own checks read values (a URL, a header name), so they run only on a resolved config.
  const semantic = checkSemantics(config, opts.secrets === false ? [] : modules, (path) => doc.hasIn(path));
  if (semantic) {
    const line = lineOf(doc, lc, semantic.path, null);
    const path = formatPath(semantic.path, null);
    return { ok: false, error: new ConfigError(`${source}:${line ?? '?'}: ${path}: ${semantic.message}`, path, line) };
  }
  config.source = source;
  return ok(config);
}

/**
 * Checks a schema cannot express: unique names, listen addresses, tokens, issuers and
 * certificate mappings; TLS keys that only work together; keys that would be ignored in
 * combination; then each connector module's own checks.
 */
function checkSemantics(c: GatehouseConfig, modules: readonly ConnectorModule[], written: (path: (string | number)[]) => boolean): ConfigProblem | null {
  // Strict durability commits continuously: a window would do nothing.
  if (c.audit.durability === 'strict' && written(['audit', 'window_ms'])) {
    return { path: ['audit', 'window_ms'], message: 'window_ms applies only to durability: batched (strict commits every event before its reply)' };
  }
  const issuers = new Set<string>();
  for (const [i, o] of c.identity.oidc.entries()) {
    if (issuers.has(o.issuer)) return { path: ['identity', 'oidc', i, 'issuer'], message: `issuer ${o.issuer} is configured twice` };
    issuers.add(o.issuer);
  }
  const tokens = new Map<string, number>();
  for (const [i, s] of c.identity.static_tokens.entries()) {
    const first = tokens.get(s.token);
    // Never echo the token: name the entry it repeats.
    if (first !== undefined) return { path: ['identity', 'static_tokens', i, 'token'], message: `same token as identity.static_tokens[${first}]` };
    tokens.set(s.token, i);
  }
  // One certificate field value maps to one identity; a second entry would be ambiguous.
  const certKeys = new Set<string>();
  for (const [i, m] of (c.identity.certificates ?? []).entries()) {
    const key = m.cn !== undefined ? `cn:${m.cn}` : `uri:${m.uri}`;
    if (certKeys.has(key)) return { path: ['identity', 'certificates', i], message: `duplicate certificate mapping ${key.replace(':', ' ')}` };
    certKeys.add(key);
  }
  if (c.admin.tls) {
    const tls = checkTls(c.admin.tls, ['admin', 'tls']);
    if (tls) return tls;
  }
  const byType = new Map(modules.map((m) => [m.type, m]));
  const names = new Map<string, number>();
  const listens = new Map<string, string>([[c.admin.listen, 'admin']]);
  for (const [i, conn] of c.connectors.entries()) {
    if (names.has(conn.name)) return { path: ['connectors', i, 'name'], message: `duplicate connector name "${conn.name}"` };
    names.set(conn.name, i);
    const other = conn.listen.endsWith(':0') ? undefined : listens.get(conn.listen);
    if (other) return { path: ['connectors', i, 'listen'], message: `${conn.listen} is already used by ${other}` };
    listens.set(conn.listen, `connector "${conn.name}"`);
    if (conn.tls) {
      const tls = checkTls(conn.tls, ['connectors', i, 'tls']);
      if (tls) return tls;
    }
    const ruleNames = new Set<string>();
    for (const [j, r] of conn.rules.entries()) {
      if (ruleNames.has(r.name)) return { path: ['connectors', i, 'rules', j, 'name'], message: `duplicate rule name "${r.name}"` };
      ruleNames.add(r.name);
    }
    const own = byType.get(conn.type)?.check?.(conn);
    if (own) return { path: ['connectors', i, ...own.path], message: own.message };
  }
  return checkApprovals(c) ?? checkWorkers(c);
}

/**
 * A certificate needs its key (alone, either would be ignored: a development certificate or
 * clear text instead), and a client CA is used only to verify client certificates.
 */
function checkTls(tls: TlsConfig, at: (string | number)[]): ConfigProblem | null {
  if (!tls.cert || !tls.key) return { path: at, message: 'tls needs both cert and key' };
  // Without its own CA, node would verify client certificates against the public roots.
  if (tls.client_auth && !tls.ca) return { path: at, message: 'client_auth needs cert, key and ca (the CA that signs client certificates)' };
  if (tls.ca && !tls.client_auth) return { path: [...at, 'ca'], message: 'ca is the CA of client certificates: it needs client_auth: true' };
  return null;
}

/** Read and parse a config file; `${file:…}` paths are relative to the file's folder. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, opts: Pick<ParseOptions, 'secrets' | 'connectors'> = {}): Result<GatehouseConfig, ConfigError> {
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
