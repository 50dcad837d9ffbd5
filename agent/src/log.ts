/**
 * The agent's log: one JSON object per line on stderr (the same shape pino writes for the
 * gateway, without the dependency). Values that may hold a secret go through redactUrl first.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export interface AgentLogger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(min: Level = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): AgentLogger {
  return {
    log(level, msg, fields = {}) {
      if (RANK[level] < RANK[min]) return;
      write(JSON.stringify({ level: RANK[level], time: Date.now(), name: 'gatehouse-agent', msg, ...fields }) + '\n');
    },
  };
}

/** A URL with its password (and query, which may carry tokens) replaced: safe to log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.search) u.search = '?***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}
