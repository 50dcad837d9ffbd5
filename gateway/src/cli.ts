/**
 * `gatehouse <command>`: the gateway and the offline audit tools. Every command that
 * reads the audit store opens it read-only, so it is safe while the gateway runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { loadConfig, resolveWorkers, type GatehouseConfig } from '@gatehouse/core';
import { iterateEvents, proveInclusion, readLatestCheckpoint, readVerifierKey, verifyLog, verifyProofBundle, type ProofBundle } from '@gatehouse/audit';
import { listAsciicasts, readAsciicast, readRecording } from '@gatehouse/recording';
import { compareLocal, redactUrl, startAgent, verifyCentral } from '@gatehouse/agent';
import { connectorModules } from './connectors.js';
import { startGateway } from './gateway.js';
import { startCluster } from './cluster/primary.js';
import { approvalsCommand, APPROVALS_USAGE } from './approvals-cli.js';

const USAGE = `usage: gatehouse <command> [options]

  start -c FILE                          run the gateway
  audit export -c FILE [--since T] [--connector N]
                                         print audit events as JSON lines
  audit verify -c FILE [--checkpoint F]  check chain, Merkle roots and signatures (exit 0 only if intact)
  audit verify --central URL [--gateway ID] [--witness-key K]…
                                         check the central store (every gateway, or one); with -c FILE
                                         also compare the local log with what was shipped from it
  agent -c FILE                          run the shipping agent (agent.sinks; docs/agent.md)
  audit checkpoint -c FILE               print the latest signed checkpoint
  audit prove -c FILE SEQ                print an inclusion proof bundle for event SEQ (JSON)
  audit verify-proof BUNDLE --key PUB    check a proof bundle against a verifier key (text or file)
  replay -c FILE SESSION_ID              print a recorded session's timeline, then play its
         [--speed N] [--idle-limit S]    terminal recordings (SSH shells and execs, asciicast)
         [--instant] [--terminal N]      in real time (N times faster; pauses capped at S s)
  replay FILE.cast[.gz] [--speed N …]    play one asciicast recording
${APPROVALS_USAGE}`;

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const fail = (msg: string, code = 2): number => {
  process.stderr.write(`gatehouse: ${msg}\n`);
  return code;
};

/**
 * Load the config, validated for this build's connector types; offline tools skip secret
 * references (they need only data_dir: an auditor needs no upstream secret).
 */
function config(path: string | undefined, secrets = false): GatehouseConfig {
  if (!path) throw new Error('-c FILE is required');
  const r = loadConfig(path, process.env, { secrets, connectors: connectorModules });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  try {
    if (cmd === 'start') return await start(rest);
    if (cmd === 'audit') return await audit(rest);
    if (cmd === 'replay') return await replay(rest);
    if (cmd === 'agent') return await agent(rest);
    if (cmd === 'approvals') return await approvalsCommand(rest, { out, err: (s) => process.stderr.write(s + '\n') });
  } catch (e) {
    return fail((e as Error).message);
  }
  return fail(`unknown command "${cmd}"\n${USAGE}`);
}

async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const cfg = config(values.config, true);
  // A file-size limit (RLIMIT_FSIZE) must reach the audit writer as a write error, so that
  // it fails closed with a message, instead of the signal killing the gateway mid-stream.
  process.on('SIGXFSZ', () => {});
  // workers: 1 (the default) is the single process, exactly as before; above 1 this process
  // becomes the primary of connection workers (gateway/src/cluster).
  const workers = resolveWorkers(cfg.workers);
  const gw = workers > 1 ? await startCluster(cfg, { workers }) : await startGateway(cfg, { connectors: connectorModules });
  gw.logger.info({ admin: gw.admin, dataDir: cfg.data_dir, workers }, 'admin API listening');
  gw.logger.info({ verifierKey: gw.verifierKey }, 'audit checkpoints are signed with this key');
  out(`gatehouse: admin on ${gw.adminUrl}`);
  for (const [name, addr] of gw.addresses) out(`gatehouse: connector ${name} on ${addr}`);
  for (const w of gw.workers?.() ?? []) out(`gatehouse: worker ${w.index} pid ${w.pid}`);
  out(`gatehouse: audit checkpoint key ${gw.verifierKey}`);
  const signal = await Promise.race([once(process, 'SIGTERM').then(() => 'SIGTERM'), once(process, 'SIGINT').then(() => 'SIGINT')]);
  gw.logger.info({ signal }, 'shutting down: draining connections, flushing the audit log');
  await gw.stop();
  out('gatehouse: stopped');
  return 0;
}

async function audit(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      since: { type: 'string' },
      connector: { type: 'string' },
      checkpoint: { type: 'string' },
      central: { type: 'string' },
      gateway: { type: 'string' },
      'witness-key': { type: 'string', multiple: true },
      key: { type: 'string' },
    },
  });
  switch (sub) {
    case 'export': {
      const cfg = config(values.config);
      if (values.since && Number.isNaN(Date.parse(values.since))) return fail('--since must be an RFC 3339 time');
      for (const e of iterateEvents(cfg.data_dir, { since: values.since, connector: values.connector })) {
        // Respect back-pressure: a slow consumer (| less) must not make us buffer the whole log.
        if (!process.stdout.write(JSON.stringify(e) + '\n')) await once(process.stdout, 'drain');
      }
      return 0;
    }
    case 'verify': {
      if (values.central) return await verifyAgainstCentral(values.central, values.config, values.gateway, values['witness-key'] ?? []);
      const cfg = config(values.config);
      const checkpoint = values.checkpoint ? readFileSync(values.checkpoint, 'utf8') : undefined;
      const r = verifyLog(cfg.data_dir, { checkpoint });
      if (r.ok) {
        out(`ok: ${r.size} events, root ${r.root}, ${r.checkpoints} checkpoints verified`);
        return 0;
      }
      process.stderr.write(`FAILED at seq ${r.firstBadSeq ?? '?'}: ${r.reason}\n`);
      return 1;
    }
    case 'checkpoint': {
      const cfg = config(values.config);
      const note = readLatestCheckpoint(cfg.data_dir);
      if (!note) return fail('no checkpoint yet', 1);
      process.stdout.write(note);
      return 0;
    }
    case 'prove': {
      const cfg = config(values.config);
      const seq = Number(positionals[0]);
      if (!Number.isInteger(seq) || seq < 1) return fail('prove needs a sequence number');
      out(JSON.stringify(proveInclusion(cfg.data_dir, seq), null, 2));
      return 0;
    }
    case 'verify-proof': {
      const file = positionals[0];
      if (!file) return fail('verify-proof needs a BUNDLE file');
      const key = values.key
        ? existsSync(values.key)
          ? readFileSync(values.key, 'utf8').trim()
          : values.key
        : values.config
          ? readVerifierKey(config(values.config).data_dir)
          : null;
      if (!key) return fail('--key PUB (verifier key text or file) is required');
      // Untrusted input: verifyProofBundle checks every field of the bundle.
      const r = verifyProofBundle(JSON.parse(readFileSync(file, 'utf8')) as ProofBundle, key);
      if (!r.ok) return fail(`proof invalid: ${r.error.message}`, 1);
      out(`ok: event ${r.value.seq} is included in the signed log of size ${r.value.size}`);
      return 0;
    }
  }
  return fail(`unknown audit command "${sub ?? ''}"\n${USAGE}`);
}

/**
 * `audit verify --central URL`: the central store on its own (every gateway or --gateway),
 * and with -c the local log compared with what was shipped from it. Exit 1 naming the first bad seq.
 */
async function verifyAgainstCentral(url: string, configPath: string | undefined, gateway: string | undefined, witnessKeys: string[]): Promise<number> {
  const cfg = configPath ? config(configPath) : null;
  const keys = witnessKeys.map((k) => (existsSync(k) ? readFileSync(k, 'utf8').trim() : k));
  const reports = await verifyCentral(url, { gateway: gateway ?? cfg?.gateway_id, witnessKeys: keys });
  let bad = 0;
  // Nothing to verify proves nothing: an empty store (or a wrong URL) is not a pass.
  if (reports.length === 0) {
    process.stderr.write(`FAILED: no gateways in the central store at ${redactUrl(url)}\n`);
    bad++;
  }
  for (const r of reports) {
    if (r.ok)
      out(`ok: ${r.gatewayId}: ${r.size} events (${r.signed} under a signed checkpoint), ${r.checkpoints} checkpoints verified${keys.length ? `, ${r.cosigned} cosigned` : ''}`);
    else {
      bad++;
      process.stderr.write(`FAILED ${r.gatewayId} at seq ${r.firstBadSeq ?? '?'}: ${r.reason}\n`);
    }
  }
  if (cfg) {
    const c = await compareLocal(cfg.data_dir, cfg.gateway_id, url);
    if (c.ok) out(`ok: local log of ${cfg.gateway_id} (${c.local} events) holds the ${c.compared} events shipped`);
    else {
      bad++;
      process.stderr.write(`FAILED local log of ${cfg.gateway_id} at seq ${c.firstBadSeq ?? '?'}: ${c.reason}\n`);
    }
  }
  return bad ? 1 : 0;
}

/** `gatehouse agent -c FILE`: ships until SIGTERM / SIGINT; exit 3 if it stopped shipping on a verification failure. */
async function agent(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const cfg = config(values.config, true);
  const a = await startAgent(cfg);
  await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  await a.stop();
  return a.halted() ? 3 : 0;
}

async function replay(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      speed: { type: 'string' },
      'idle-limit': { type: 'string' },
      instant: { type: 'boolean' },
      terminal: { type: 'string' },
    },
  });
  const speed = values.instant ? Infinity : Number(values.speed ?? 1);
  const idleLimit = Number(values['idle-limit'] ?? 2);
  if (!(speed > 0) || !(idleLimit >= 0)) return fail('--speed must be > 0 and --idle-limit >= 0');
  const id = positionals[0];
  if (id && /\.cast(\.gz)?$/.test(id) && existsSync(id)) {
    await playAsciicast(id, speed, idleLimit);
    return 0;
  }
  const cfg = config(values.config);
  if (!id) return fail('replay needs a SESSION_ID');
  const casts = listAsciicasts(cfg.data_dir, id).filter((_, i) => values.terminal === undefined || String(i + 1) === values.terminal);
  if (!existsSync(`${cfg.data_dir}/recordings/${id}.jsonl`) && casts.length === 0) return fail(`no recording of session ${id}`, 1);
  if (existsSync(`${cfg.data_dir}/recordings/${id}.jsonl`)) printTimeline(cfg, id);
  for (const file of casts) {
    out(`--- terminal ${file.slice(file.lastIndexOf('/') + 1)}`);
    await playAsciicast(file, speed, idleLimit);
    out('');
  }
  return 0;
}

/**
 * Write an asciicast recording's output to the terminal with its timing (`speed` times
 * faster, pauses capped at `idleLimit` seconds; Infinity: at once). Markers (a truncation,
 * for one) are shown in brackets; input events are not replayed (their echo is output).
 */
async function playAsciicast(file: string, speed: number, idleLimit: number): Promise<void> {
  let last = 0;
  for await (const ev of readAsciicast(file)) {
    if (!Array.isArray(ev)) {
      const h = ev as { width?: number; height?: number; title?: string };
      process.stderr.write(`gatehouse: replaying ${h.title ?? file} (${h.width}x${h.height})\n`);
      continue;
    }
    const [t, kind, data] = ev;
    const wait = Math.min(Math.max(0, t - last), idleLimit) / speed;
    last = t;
    if (wait > 0 && Number.isFinite(wait)) await new Promise((r) => setTimeout(r, wait * 1000));
    if (kind === 'o') {
      if (!process.stdout.write(data)) await once(process.stdout, 'drain');
    } else if (kind === 'm') process.stdout.write(`\r\n[${data}]\r\n`);
    else if (kind === 'r' && process.stdout.isTTY) process.stderr.write(`\x1b[8;${data.split('x')[1]};${data.split('x')[0]}t`);
  }
}

function printTimeline(cfg: GatehouseConfig, id: string): void {
  const r = readRecording(cfg.data_dir, id);
  // The header the recorder wrote (strings; JSON from data_dir).
  const h = r.header as Record<'connector' | 'protocol' | 'subject' | 'peer' | 'started', string>;
  out(`session ${id} · ${h.connector} (${h.protocol}) · ${h.subject} from ${h.peer} · started ${h.started}`);
  for (const e of r.entries) {
    const head = `+${(e.t / 1000).toFixed(3)}s ${e.type}${e.decision && e.decision !== 'allow' ? ` [${e.decision}${e.rule ? ` by ${e.rule}` : ''}]` : ''}`;
    const tail = [
      e.status !== undefined ? `status ${e.status}` : '',
      e.rows !== undefined ? `${e.rows} rows` : '',
      e.durationMs !== undefined ? `${e.durationMs.toFixed(2)} ms` : '',
      e.error ? `error: ${e.error}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    out(`${head}  ${e.text ?? ''}${tail ? `  (${tail})` : ''}`);
    if (e.sample !== undefined) out(`    ${JSON.stringify(e.sample)}`);
    if (e.data) process.stdout.write(e.data);
  }
}
