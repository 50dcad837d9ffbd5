/**
 * An exec request's command line, read the way a POSIX shell would split it, so that rules
 * see each command that will run and not just the first word of the text:
 *
 * - words with quotes and escapes removed (`r"m" -r'f' /` is `rm -rf /`);
 * - simple commands split at `;` `&` `&&` `||` `|` `|&` newlines, `(` `)` and `{ }`;
 *   redirections and their targets left out of argv; leading `VAR=value` words skipped;
 *   reserved words (`if`, `then`, `do`, `!`, `time`, …) skipped;
 * - command substitutions `$(…)`, `` `…` ``, `<(…)`, `>(…)` parsed as commands of their own;
 * - nested command lines judged too: `sh -c '…'` (any shell), `eval …`, `su -c …`, `env -S …`,
 *   `watch …`, `find … -exec … ;`, and wrappers that run their arguments (`sudo`, `env`,
 *   `nice`, `nohup`, `timeout`, `xargs`, `busybox`, …) yield the wrapped command as well;
 * - a command whose program is not a literal word (`$CMD -rf /`, `$(echo rm) …`) is *opaque*:
 *   the policy refuses it wherever deny or review rules apply unless a rule allows it.
 *
 * This is a reading of the text, not a sandbox: a script file, an interpreter given code
 * (`python -c`), or an alias on the target runs what no rule saw. See docs/connectors/ssh.md.
 */

export interface SimpleCommand {
  /** Words after quote removal; argv[0] is the program as written. */
  argv: string[];
  /** argv joined by single spaces: what `command:` patterns match. */
  text: string;
  /** Set when the program cannot be known from the text. */
  opaque?: string;
}

export interface ParsedCommandLine {
  /** Every command the line would run, outer first, then substitutions and nested ones. */
  commands: SimpleCommand[];
}

/** Bounds: a line past these is judged as one opaque command. */
const MAX_LINE = 64 * 1024;
const MAX_DEPTH = 6;
const MAX_COMMANDS = 256;

const RESERVED = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', '!', 'time', '{', '}', 'in', 'esac', 'coproc']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'mksh', 'yash', 'fish', 'rbash']);

type Tok = { kind: 'word'; value: string; literal: boolean; subs: string[] } | { kind: 'op'; value: string } | { kind: 'subs'; subs: string[] };

class TooComplex extends Error {}

export function parseCommandLine(line: string): ParsedCommandLine {
  const out: SimpleCommand[] = [];
  try {
    if (line.length > MAX_LINE) throw new TooComplex('command line too long to judge');
    parseInto(line, 0, out);
  } catch (e) {
    if (!(e instanceof TooComplex)) throw e;
    return { commands: [{ argv: [line], text: line, opaque: e.message }] };
  }
  return { commands: dedupe(out) };
}

function dedupe(list: SimpleCommand[]): SimpleCommand[] {
  const seen = new Set<string>();
  return list.filter((c) => {
    const k = `${c.opaque ?? ''}\0${c.text}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function parseInto(line: string, depth: number, out: SimpleCommand[]): void {
  if (depth > MAX_DEPTH) throw new TooComplex('commands nested too deeply to judge');
  const toks = tokenize(line);
  let words: Extract<Tok, { kind: 'word' }>[] = [];
  let redirectNext = false;
  const flush = () => {
    if (words.length) simple(words, depth, out);
    words = [];
  };
  for (const t of toks) {
    if (t.kind === 'subs') {
      // Substitutions inside an expanded here-document: they run, but are no word.
      for (const sub of t.subs) parseInto(sub, depth + 1, out);
      continue;
    }
    if (t.kind === 'op') {
      if (isRedirect(t.value)) {
        redirectNext = true;
        continue;
      }
      flush();
      redirectNext = false;
      continue;
    }
    // Substitutions run wherever they appear, also in redirection targets.
    for (const s of t.subs) parseInto(s, depth + 1, out);
    if (redirectNext) {
      redirectNext = false;
      continue;
    }
    words.push(t);
  }
  flush();
  if (out.length > MAX_COMMANDS) throw new TooComplex('too many commands in one line to judge');
}

function simple(words: Extract<Tok, { kind: 'word' }>[], depth: number, out: SimpleCommand[]): void {
  let i = 0;
  // Reserved words and assignments before the program.
  for (;;) {
    const w = words[i];
    if (!w) return;
    if (w.literal && RESERVED.has(w.value)) {
      i++;
      continue;
    }
    if (w.literal && (w.value === 'for' || w.value === 'select' || w.value === 'case' || w.value === 'function')) {
      // A loop or case header names variables and words, not commands; its body follows `do`/`in`.
      if (w.value === 'case') throw new TooComplex('case statements are not judged');
      return;
    }
    if (/^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(w.value) && w.literal) {
      i++;
      continue;
    }
    break;
  }
  const rest = words.slice(i);
  const argv = rest.map((w) => w.value);
  const first = rest[0];
  const cmd: SimpleCommand = { argv, text: argv.join(' ') };
  // `[` and `[[` are the test command, not a glob.
  if (!first.literal && first.value !== '[' && first.value !== '[[') cmd.opaque = 'the program is not a literal word (expansion or substitution)';
  out.push(cmd);
  if (!cmd.opaque)
    nested(
      argv,
      rest.map((w) => w.literal),
      depth,
      out,
    );
}

function base(p: string): string {
  const i = p.lastIndexOf('/');
  return i >= 0 ? p.slice(i + 1) : p;
}

/** Options taking a value, per wrapper (the next word is skipped with them). */
const WRAPPERS: Record<string, { withValue: string; valueFirst?: number }> = {
  sudo: { withValue: 'ugCDhprtUTg' },
  doas: { withValue: 'uC' },
  env: { withValue: 'uCPS' },
  nice: { withValue: 'n' },
  nohup: { withValue: '' },
  command: { withValue: '' },
  builtin: { withValue: '' },
  exec: { withValue: 'a' },
  timeout: { withValue: 'sk', valueFirst: 1 },
  stdbuf: { withValue: 'ioe' },
  ionice: { withValue: 'cnpt' },
  setsid: { withValue: '' },
  chroot: { withValue: '', valueFirst: 1 },
  xargs: { withValue: 'IiLlnPsdEae' },
  busybox: { withValue: '' },
  unbuffer: { withValue: '' },
  taskset: { withValue: '', valueFirst: 1 },
  chrt: { withValue: '', valueFirst: 1 },
  runuser: { withValue: 'ugs' },
  flock: { withValue: 'wE', valueFirst: 1 },
  strace: { withValue: 'oepsuE' },
  ltrace: { withValue: 'oepsuE' },
  caffeinate: { withValue: 'tw' },
  time: { withValue: 'fo' },
};

function nested(argv: string[], literal: boolean[], depth: number, out: SimpleCommand[]): void {
  const prog = base(argv[0]);
  // A shell given a command string: judge the string.
  if (SHELLS.has(prog) || (prog === 'su' && argv.includes('-c')) || prog === 'script') {
    for (let j = 1; j < argv.length; j++) {
      const a = argv[j];
      if (a === '--command' || a === '-c' || (/^-[a-zA-Z]+$/.test(a) && a.includes('c') && SHELLS.has(prog))) {
        const s = argv[j + 1];
        if (s !== undefined) parseInto(s, depth + 1, out);
        return;
      }
    }
    return;
  }
  if (prog === 'eval') {
    parseInto(argv.slice(1).join(' '), depth + 1, out);
    return;
  }
  if (prog === 'watch') {
    let j = 1;
    while (j < argv.length && argv[j].startsWith('-')) j += /^-[nd]$/.test(argv[j]) || argv[j] === '--interval' ? 2 : 1;
    if (j < argv.length) parseInto(argv.slice(j).join(' '), depth + 1, out);
    return;
  }
  if (prog === 'find') {
    for (let j = 1; j < argv.length; j++) {
      if (['-exec', '-execdir', '-ok', '-okdir'].includes(argv[j])) {
        let k = j + 1;
        const inner: string[] = [];
        while (k < argv.length && argv[k] !== ';' && argv[k] !== '+') inner.push(argv[k++]);
        if (inner.length) pushArgv(inner, literal.slice(j + 1, k), depth, out);
        j = k;
      }
    }
    return;
  }
  const w = WRAPPERS[prog];
  if (!w) return;
  let j = 1;
  let positional = w.valueFirst ?? 0;
  while (j < argv.length) {
    const a = argv[j];
    if (a === '--') {
      j++;
      break;
    }
    if (prog === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
      j++;
      continue;
    }
    if (prog === 'env' && (a === '-S' || a.startsWith('--split-string'))) {
      const s = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[j + 1];
      if (s !== undefined) parseInto(s, depth + 1, out);
      return;
    }
    if (prog === 'flock' && (a === '-c' || a === '--command')) {
      const s = argv[j + 1];
      if (s !== undefined) parseInto(s, depth + 1, out);
      return;
    }
    if (a.startsWith('-') && a.length > 1) {
      // -uroot or -u root; long options with = carry their value.
      if (!a.startsWith('--') && a.length === 2 && w.withValue.includes(a[1])) j += 2;
      else if (a.startsWith('--') && !a.includes('=') && LONG_WITH_VALUE.has(a)) j += 2;
      else j++;
      continue;
    }
    if (positional > 0) {
      positional--;
      j++;
      continue;
    }
    break;
  }
  if (j < argv.length) pushArgv(argv.slice(j), literal.slice(j), depth, out);
}

const LONG_WITH_VALUE = new Set([
  '--user',
  '--group',
  '--signal',
  '--kill-after',
  '--chdir',
  '--unset',
  '--adjustment',
  '--replace',
  '--max-args',
  '--max-procs',
  '--delimiter',
  '--arg-file',
  '--timeout',
]);

function pushArgv(argv: string[], literal: boolean[], depth: number, out: SimpleCommand[]): void {
  if (depth + 1 > MAX_DEPTH) throw new TooComplex('commands nested too deeply to judge');
  const cmd: SimpleCommand = { argv, text: argv.join(' ') };
  if (literal[0] === false) cmd.opaque = 'the program is not a literal word (expansion or substitution)';
  out.push(cmd);
  if (!cmd.opaque) nested(argv, literal, depth + 1, out);
}

function isRedirect(op: string): boolean {
  return /^[0-9]*(<<<|<<-|<<|>>|>\||<>|>&|<&|&>>|&>|<|>)$/.test(op);
}

/**
 * Shell tokens. A word is `literal` when nothing in it is expanded by the shell at run time
 * (no `$`, no substitution, no unquoted glob); `subs` are the command substitutions in it.
 */
export function tokenize(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let word: { value: string; literal: boolean; subs: string[] } | null = null;
  const start = () => (word ??= { value: '', literal: true, subs: [] });
  const end = () => {
    if (word) toks.push({ kind: 'word', ...word });
    word = null;
  };
  const heredocs: { delim: string; quoted: boolean; strip: boolean }[] = [];
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t') {
      end();
      i++;
      continue;
    }
    if (c === '\n') {
      end();
      toks.push({ kind: 'op', value: ';' });
      i++;
      // Here-document bodies follow the line that opened them.
      while (heredocs.length) {
        const h = heredocs.shift()!;
        for (;;) {
          if (i >= s.length) break;
          const nl = s.indexOf('\n', i);
          const lineText = s.slice(i, nl === -1 ? s.length : nl);
          i = nl === -1 ? s.length : nl + 1;
          if ((h.strip ? lineText.replace(/^\t+/, '') : lineText) === h.delim) break;
          // An unquoted delimiter expands the body: its substitutions run.
          if (!h.quoted) {
            const subs = substitutionsIn(lineText);
            if (subs.length) toks.push({ kind: 'subs', subs });
          }
        }
      }
      continue;
    }
    if (c === '#' && word === null) {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      if (s[i + 1] === '\n') {
        i += 2;
        continue;
      }
      start().value += s[i + 1] ?? '';
      i += 2;
      continue;
    }
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j === -1) throw new TooComplex('unterminated single quote');
      start().value += s.slice(i + 1, j);
      i = j + 1;
      continue;
    }
    if (c === '"') {
      const w = start();
      i++;
      for (;;) {
        if (i >= s.length) throw new TooComplex('unterminated double quote');
        const d = s[i];
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1])) {
          if (s[i + 1] !== '\n') w.value += s[i + 1];
          i += 2;
          continue;
        }
        if (d === '$' && s[i + 1] === '(') {
          const [inner, next] = balanced(s, i + 2);
          w.subs.push(inner);
          w.literal = false;
          w.value += s.slice(i, next);
          i = next;
          continue;
        }
        if (d === '`') {
          const [inner, next] = backtick(s, i + 1);
          w.subs.push(inner);
          w.literal = false;
          w.value += s.slice(i, next);
          i = next;
          continue;
        }
        if (d === '$') w.literal = false;
        w.value += d;
        i++;
      }
      continue;
    }
    if (c === '$' && s[i + 1] === '(') {
      const w = start();
      const [inner, next] = balanced(s, i + 2);
      // `$((…))` is arithmetic, not a command.
      if (!(inner.startsWith('(') && inner.endsWith(')'))) w.subs.push(inner);
      w.literal = false;
      w.value += s.slice(i, next);
      i = next;
      continue;
    }
    if (c === '`') {
      const w = start();
      const [inner, next] = backtick(s, i + 1);
      w.subs.push(inner);
      w.literal = false;
      w.value += s.slice(i, next);
      i = next;
      continue;
    }
    if ((c === '<' || c === '>') && s[i + 1] === '(') {
      end();
      const [inner, next] = balanced(s, i + 2);
      toks.push({ kind: 'word', value: s.slice(i, next), literal: false, subs: [inner] });
      i = next;
      continue;
    }
    if (c === '$' || c === '*' || c === '?' || c === '[') {
      // Expanded at run time: the word is not what the text says.
      const w = start();
      w.literal = false;
      w.value += c;
      i++;
      continue;
    }
    const op = operatorAt(s, i, word);
    if (op) {
      // Digits just before a redirection are its file descriptor, not a word.
      if (word && /^[0-9]+$/.test((word as { value: string }).value) && /^[<>&]/.test(op)) word = null;
      end();
      toks.push({ kind: 'op', value: op });
      i += op.length;
      if (op === '<<' || op === '<<-') {
        // The delimiter word follows (quotes in it mean the body is not expanded).
        while (s[i] === ' ' || s[i] === '\t') i++;
        let j = i;
        while (j < s.length && !/[\s;&|<>()]/.test(s[j])) j++;
        const raw = s.slice(i, j);
        if (raw) heredocs.push({ delim: raw.replace(/['"\\]/g, ''), quoted: /['"\\]/.test(raw), strip: op === '<<-' });
      }
      continue;
    }
    start().value += c;
    i++;
  }
  end();
  return toks;
}

const OPS = ['&>>', '<<<', '<<-', '&&', '||', '|&', ';;', '>>', '<<', '>|', '<>', '>&', '<&', '&>', ';', '&', '|', '(', ')', '<', '>'];

function operatorAt(s: string, i: number, _word: unknown): string | null {
  for (const op of OPS) if (s.startsWith(op, i)) return op;
  return null;
}

/** The text inside `$(` … `)` starting at `from`, and the index after the closing paren. */
function balanced(s: string, from: number): [string, number] {
  let depth = 1;
  let i = from;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j === -1) throw new TooComplex('unterminated single quote');
      i = j + 1;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return [s.slice(from, i), i + 1];
    i++;
  }
  throw new TooComplex('unterminated command substitution');
}

function backtick(s: string, from: number): [string, number] {
  let i = from;
  let inner = '';
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      inner += '$`\\'.includes(s[i + 1]) ? s[i + 1] : c + s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') return [inner, i + 1];
    inner += c;
    i++;
  }
  throw new TooComplex('unterminated backquote');
}

/** Command substitutions in a line of an expanded here-document. */
function substitutionsIn(line: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') {
      i++;
      continue;
    }
    if (line[i] === '$' && line[i + 1] === '(') {
      const [inner, next] = balanced(line, i + 2);
      out.push(inner);
      i = next - 1;
    } else if (line[i] === '`') {
      const [inner, next] = backtick(line, i + 1);
      out.push(inner);
      i = next - 1;
    }
  }
  return out;
}

/** The program's file name: `/usr/bin/rm` → `rm`. */
export function programName(argv0: string): string {
  return base(argv0);
}
