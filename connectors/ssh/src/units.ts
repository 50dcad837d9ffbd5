/**
 * Policy units of SSH requests. Every unit has type `command`; its `match` keys are
 * `channel` (exec | shell | sftp | scp | direct-tcpip | subsystem), `command` (the command
 * line, or one command of it), `program` (argv[0] as written and its file name), and `path`
 * (sftp / scp). CEL conditions see `command.{text, channel, program, argv, path, line, …}`.
 */
import type { Unit } from '@gatehouse/core';
import { parseCommandLine, programName } from './command.js';
import { scpRequest, type ScpRequest } from './scp.js';

export type Channel = 'exec' | 'shell' | 'sftp' | 'scp' | 'direct-tcpip' | 'subsystem';

function programs(argv0: string | undefined): string[] | undefined {
  if (argv0 === undefined) return undefined;
  const name = programName(argv0);
  return name === argv0 ? [argv0] : [argv0, name];
}

/**
 * A command as written, and — when its program is given by path (`/bin/rm -rf /`) — the
 * same with the program's file name (`rm -rf /`), so `command:` patterns see both.
 */
function commandForms(argv: readonly string[], text: string): string[] {
  const argv0 = argv[0];
  if (argv0 === undefined) return [text];
  const name = programName(argv0);
  return name === argv0 || name === '' ? [text] : [text, [name, ...argv.slice(1)].join(' ')];
}

export interface ExecUnits {
  channel: Channel;
  /** The unit recorded for the whole request (the line as sent). */
  outer: Unit;
  /** Every unit judged: the whole line, then each command it would run. */
  units: Unit[];
  scp: ScpRequest | null;
  /** The exec starts an SFTP server (`sftp -s /usr/lib/openssh/sftp-server`): judged and read as sftp. */
  sftpServer: boolean;
}

/** The units of an exec request. */
export function execUnits(line: string): ExecUnits {
  const { commands } = parseCommandLine(line);
  const single = commands.length === 1 && !commands[0].opaque ? commands[0] : null;
  const scp = single ? scpRequest(single.argv) : null;
  const prog = single ? programName(single.argv[0]) : '';
  const sftpServer = single !== null && (prog === 'sftp-server' || prog === 'internal-sftp');
  const channel: Channel = scp ? 'scp' : sftpServer ? 'sftp' : 'exec';
  const first = commands[0];
  const outer: Unit = {
    type: 'command',
    text: line,
    match: {
      channel,
      command: single ? [...new Set([line.trim(), ...commandForms(single.argv, single.text)])] : line.trim(),
      program: programs(first?.argv[0]),
      ...(scp ? { path: scp.target } : {}),
    },
    context: {
      text: line,
      line,
      channel,
      program: first ? programName(first.argv[0]) : '',
      argv: first?.argv ?? [],
      commands: commands.map((c) => c.text),
      ...(scp ? { path: scp.target, direction: scp.direction } : {}),
      ...(commands.some((c) => c.opaque) ? { opaque: true, opaqueReason: commands.find((c) => c.opaque)!.opaque } : {}),
    },
  };
  const units: Unit[] = [outer];
  for (const c of commands) {
    if (c.text === line.trim() && !c.opaque && commands.length === 1) continue;
    units.push({
      type: 'command',
      text: c.text,
      match: { channel, command: commandForms(c.argv, c.text), program: programs(c.argv[0]) },
      context: {
        text: c.text,
        line,
        channel,
        program: programName(c.argv[0] ?? ''),
        argv: c.argv,
        ...(c.opaque ? { opaque: true, opaqueReason: c.opaque } : {}),
      },
    });
  }
  return { channel, outer, units, scp, sftpServer };
}

export function shellUnit(term: string | null): Unit {
  return { type: 'command', text: 'shell', match: { channel: 'shell' }, context: { text: 'shell', channel: 'shell', pty: term !== null, term: term ?? '' } };
}

export function subsystemUnit(name: string): Unit {
  const channel: Channel = name === 'sftp' ? 'sftp' : 'subsystem';
  return { type: 'command', text: `subsystem ${name}`, match: { channel, command: `subsystem ${name}` }, context: { text: `subsystem ${name}`, channel, subsystem: name } };
}

export function forwardUnit(host: string, port: number, origin: { host: string; port: number }): Unit {
  const text = `direct-tcpip ${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    type: 'command',
    text,
    match: { channel: 'direct-tcpip', command: text },
    context: { text, channel: 'direct-tcpip', host, port, origin_host: origin.host, origin_port: origin.port },
  };
}

/** One judged SFTP request (open, remove, rename, …). */
export function sftpUnit(op: string, paths: readonly string[], unresolved: boolean): Unit {
  const text = `sftp ${op} ${paths.join(' ')}`.trim();
  return {
    type: 'command',
    text,
    match: { channel: 'sftp', command: text, program: 'sftp', path: [...paths] },
    context: {
      text,
      channel: 'sftp',
      operation: op,
      path: paths[0] ?? '',
      paths: [...paths],
      ...(unresolved ? { opaque: true, opaqueReason: 'a relative path before the working folder is known' } : {}),
    },
  };
}

/** One file of an scp transfer, judged by its path before its data flows. */
export function scpFileUnit(direction: 'upload' | 'download', path: string, kind: 'file' | 'directory'): Unit {
  const text = `scp ${direction} ${path}`;
  return { type: 'command', text, match: { channel: 'scp', command: text, program: 'scp', path }, context: { text, channel: 'scp', path, direction, kind } };
}
