/**
 * A throwaway PostgreSQL 15 cluster that logs every statement it executes, and a reader for
 * that log. Used to compare what the server really ran against the Gatehouse audit trail.
 *
 * The cluster runs as the `postgres` OS user (initdb/postgres refuse root) on a free port,
 * with its Unix socket in its own directory, `log_statement = all`, no logging collector
 * (the postmaster's stderr goes to `server.log` via `pg_ctl -l`), English messages and a
 * line prefix that names the backend pid, the role and the application name:
 *
 *     2026-01-01 00:00:00.123 UTC [4242] {gh_app} {my-app} LOG:  statement: SELECT 1
 *
 * (`%q` leaves user/app out for non-session processes such as the checkpointer.)
 */
import { readFileSync } from 'node:fs';
import { startTestCluster, stopTestCluster } from '../../lib/postgres.js';

export const LOG_LINE_PREFIX = '%m [%p] %q{%u} {%a} ';

export interface LogCluster {
  /** Base directory (also the Unix socket directory). */
  dir: string;
  port: number;
  logFile: string;
  readLog(): string;
}

export interface LogClusterOptions {
  /** pg_hba.conf lines. */
  hba: string[];
  /** Extra postgresql.conf lines. */
  conf?: string[];
}

/** initdb + start in `dir` (which must exist and be empty). Stop it with `stopLogCluster(dir)`. */
export async function startLogCluster(dir: string, o: LogClusterOptions): Promise<LogCluster> {
  const conf = [
    `synchronous_commit = off`,
    `full_page_writes = off`,
    `logging_collector = off`,
    `log_destination = 'stderr'`,
    `log_statement = 'all'`,
    `log_line_prefix = '${LOG_LINE_PREFIX}'`,
    `log_timezone = 'UTC'`,
    `lc_messages = 'C'`,
    ...(o.conf ?? []),
  ];
  const { port, logFile } = await startTestCluster(dir, { hba: o.hba, conf });
  return { dir, port, logFile, readLog: () => readFileSync(logFile, 'utf8') };
}

export const stopLogCluster = stopTestCluster;

// ---- reading the log ------------------------------------------------------------------

/** One log record: a prefixed line plus its continuation lines (tab-indented). */
export interface LogRecord {
  /** 1-based line number in the file, for messages. */
  line: number;
  pid: number;
  /** null for processes that are not sessions (`%q`). */
  user: string | null;
  app: string | null;
  severity: string;
  message: string;
}

const PREFIXED = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ \[(\d+)\] (?:\{([^{}]*)\} \{([^{}]*)\} )?([A-Z][A-Z0-9]*): {2}(.*)$/;

/**
 * Split the stderr log into records. Without a logging collector each message (with its
 * DETAIL / STATEMENT lines) is one write(2) to an O_APPEND file, so records never interleave.
 * PostgreSQL writes a tab after every newline inside a message: a line starting with a tab
 * continues the previous record, and that one tab is not part of the text.
 */
export function parseServerLog(text: string): { records: LogRecord[]; stray: string[] } {
  const records: LogRecord[] = [];
  const stray: string[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((l, i) => {
    if (l.startsWith('\t') && records.length > 0) {
      records[records.length - 1].message += '\n' + l.slice(1);
      return;
    }
    const m = PREFIXED.exec(l);
    if (!m) {
      stray.push(l);
      return;
    }
    records.push({ line: i + 1, pid: Number(m[1]), user: m[2] ?? null, app: m[3] ?? null, severity: m[4], message: m[5] });
  });
  return { records, stray };
}

/** A statement the server logged as executed (log_statement = all). */
export interface LoggedStatement {
  line: number;
  pid: number;
  user: string | null;
  app: string | null;
  /** simple: a Query message (possibly several statements); execute: one extended-protocol Execute. */
  kind: 'simple' | 'execute';
  /** Prepared statement name for `execute` (`<unnamed>` for the unnamed one). */
  name?: string;
  text: string;
  /** The ERROR this Query message ended with (simple only; matched by its STATEMENT line). */
  error: string | null;
}

const EXECUTE = /^execute (?:fetch from )?(\S+?)(?:\/\S+)?: ([\s\S]*)$/;

/**
 * The statements of the log in file order. `LOG:  statement: …` is written once per Query
 * message before it runs; `LOG:  execute <name>: …` once per Execute before it runs (Parse
 * and Bind are not logged, so a pipeline entry the server skipped after an error, or one
 * whose Bind failed, is not there). An ERROR whose STATEMENT is the text of the backend's
 * latest Query marks that Query as failed.
 */
export function loggedStatements(records: readonly LogRecord[]): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  const last = new Map<number, LoggedStatement>();
  let pendingError: { pid: number; message: string } | null = null;
  for (const r of records) {
    if (r.severity === 'LOG' && r.message.startsWith('statement: ')) {
      const s: LoggedStatement = { line: r.line, pid: r.pid, user: r.user, app: r.app, kind: 'simple', text: r.message.slice('statement: '.length), error: null };
      out.push(s);
      last.set(r.pid, s);
    } else if (r.severity === 'LOG' && r.message.startsWith('execute ')) {
      const m = EXECUTE.exec(r.message);
      if (!m) continue;
      const s: LoggedStatement = { line: r.line, pid: r.pid, user: r.user, app: r.app, kind: 'execute', name: m[1], text: m[2], error: null };
      out.push(s);
      last.set(r.pid, s);
    }
    if (r.severity === 'ERROR') pendingError = { pid: r.pid, message: r.message };
    else if (r.severity === 'STATEMENT' && pendingError && pendingError.pid === r.pid) {
      const s = last.get(r.pid);
      if (s && s.kind === 'simple' && s.error === null && s.text === r.message) s.error = pendingError.message;
      pendingError = null;
    } else if (r.severity !== 'DETAIL' && r.severity !== 'HINT' && r.severity !== 'CONTEXT' && r.pid === pendingError?.pid) pendingError = null;
  }
  return out;
}

// ---- SQL text -------------------------------------------------------------------------

/**
 * Split a Query string into its statements at top-level semicolons, as the server does:
 * quotes ('', E'' with backslashes, ""), dollar quotes and comments (-- and nested /* *\/)
 * are skipped. Fragments that are only whitespace and comments are dropped. Each statement
 * keeps its leading comments (as the PostgreSQL parser's statement location does).
 * Written here on purpose, independent of the gateway's own parser.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const push = (end: number) => {
    const frag = sql.slice(start, end);
    if (stripComments(frag).trim() !== '') out.push(frag.trim());
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      const e = i > 0 && /[eE]/.test(sql[i - 1]) && (i < 2 || !/[\w$]/.test(sql[i - 2]));
      i = skipQuoted(sql, i, "'", e);
    } else if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
    } else if (c === '$' && (i === 0 || !/[\w$]/.test(sql[i - 1]))) {
      const m = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (m) {
        const close = sql.indexOf(m[0], i + m[0].length);
        i = close < 0 ? n : close + m[0].length;
      } else i++;
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
      i++;
    } else if (c === ';' && depth === 0) {
      push(i);
      start = i + 1;
      i++;
    } else i++;
  }
  push(n);
  return out;
}

function skipBlockComment(sql: string, i: number): number {
  let level = 0;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      level++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      level--;
      i += 2;
      if (level === 0) return i;
    } else i++;
  }
  return i;
}

function skipQuoted(sql: string, i: number, q: string, backslash: boolean): number {
  i++;
  while (i < sql.length) {
    const c = sql[i];
    if (backslash && c === '\\') i += 2;
    else if (c === q && sql[i + 1] === q) i += 2;
    else if (c === q) return i + 1;
    else i++;
  }
  return i;
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** Comparison form of a statement: whitespace runs collapsed, trailing semicolons dropped. */
export function normalizeSql(s: string): string {
  return s
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/(\s*;)+$/, '')
    .trim();
}
