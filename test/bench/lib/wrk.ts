/**
 * wrk as the HTTP load generator. Closed loop, or at a fixed offered rate: wrk asks Lua's
 * `delay()` before every request, and ours hands each thread's requests out on a fixed
 * schedule (monotonic clock through LuaJIT's ffi; when wrk itself was descheduled, at most
 * 20 ms of missed slots are caught up, so a stall does not turn into a long burst). wrk measures latency from the write, so the wait is not counted. A Lua `done()`
 * prints the counts and p50/p99/p99.9 as one JSON line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadgen, run } from './proc.js';
import type { LoadResult } from './pgbench.js';

export interface WrkOptions {
  connections: number;
  seconds: number;
  /** Offered requests per second over all connections; absent: closed loop. */
  rate?: number;
  headers?: string[];
}

/** Per thread: the next free send slot; each request takes the next one, interval ms apart. */
const PACE = (intervalMs: number) => `
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } gh_timespec; int clock_gettime(int clk, gh_timespec *ts); ]]
local ts = ffi.new("gh_timespec")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end
local next_at = 0
delay = function()
  local t = now_ms()
  if next_at < t - 20 then next_at = t - 20 end
  local d = next_at - t
  next_at = next_at + ${intervalMs.toFixed(4)}
  if d < 1 then return 0 end
  return math.floor(d)
end
`;

const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"p999":%d,"errors":%d,"status":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;

export async function wrk(url: string, o: WrkOptions): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-wrk-'));
  try {
    const script = join(dir, 'bench.lua');
    const threads = Math.min(2, o.connections);
    writeFileSync(script, (o.rate ? PACE((1000 * threads) / o.rate) : '') + DONE);
    const args = [`-t${threads}`, `-c${o.connections}`, `-d${Math.max(1, Math.round(o.seconds))}s`, '-s', script, ...(o.headers ?? []).flatMap((h) => ['-H', h]), url];
    const [cmd, argv] = loadgen('wrk', args);
    const { stdout } = await run(cmd, argv, { maxBuffer: 4 << 20, timeout: (o.seconds + 60) * 1000 });
    const line = /WRK_JSON (\{.*\})/.exec(stdout)?.[1];
    if (!line) throw new Error(`wrk printed no summary: ${stdout}`);
    const j = JSON.parse(line) as { requests: number; duration_us: number; p50: number; p99: number; p999: number; errors: number; status: number };
    const seconds = j.duration_us / 1e6;
    return {
      units: j.requests,
      seconds,
      rate: j.requests / seconds,
      latency: { p50: j.p50 / 1000, p99: j.p99 / 1000, p999: j.p999 / 1000 },
      errors: j.errors + j.status,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
