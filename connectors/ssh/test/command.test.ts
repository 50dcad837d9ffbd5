/**
 * Exec command lines → the commands a shell would run (quotes, operators, substitutions,
 * nested shells, wrappers, opaque programs), and those units against compiled rules: glob
 * patterns over the command line (`*` crosses `/` for commands), `program` (argv[0] and its
 * file name), `channel`, `path`, CEL over `command`, and the opaque-code default.
 */
import t from 'tap';
import type { Identity } from '@gatehouse/core';
import { compilePolicy } from '@gatehouse/policy';
import { execUnits, forwardUnit, parseCommandLine, scpRequest, sftpUnit, shellUnit, subsystemUnit } from '@gatehouse/connector-ssh';

const texts = (line: string) => parseCommandLine(line).commands.map((c) => (c.opaque ? `OPAQUE:${c.text}` : c.text));

t.test('words: quotes and escapes removed, redirections dropped', async (t) => {
  t.same(texts(`r"m" -r'f' /tmp/x`), ['rm -rf /tmp/x']);
  t.same(texts('echo "a b"   c\\ d'), ['echo a b c d']);
  t.same(texts('cat < in > out 2>&1 && wc -l 2>/dev/null'), ['cat', 'wc -l']);
  t.same(texts('FOO=bar BAZ=1 rm -rf /'), ['rm -rf /']);
  t.same(texts('# a comment\nls -l # trailing'), ['ls -l']);
  t.same(texts('[ -f x ] && echo yes'), ['[ -f x ]', 'echo yes']);
});

t.test('operators split commands; reserved words are skipped', async (t) => {
  t.same(texts('a; b && c || d | e |& f & g'), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  t.same(texts('if test -d /x; then rm -rf /x; fi'), ['test -d /x', 'rm -rf /x']);
  t.same(texts('(cd /tmp && rm -rf *)'), ['cd /tmp', 'rm -rf *']);
  t.same(texts('while true; do date; done'), ['true', 'date']);
  t.same(texts('! grep -q x f'), ['grep -q x f']);
  t.same(texts('for f in a b; do rm $f; done'), ['rm $f']);
});

t.test('substitutions and nested command lines are judged too', async (t) => {
  t.same(texts('echo $(rm -rf /tmp/x)'), ['rm -rf /tmp/x', 'echo $(rm -rf /tmp/x)']);
  t.same(texts('echo `shutdown -h now`'), ['shutdown -h now', 'echo `shutdown -h now`']);
  t.same(texts('diff <(ls a) <(ls b)'), ['ls a', 'ls b', 'diff <(ls a) <(ls b)']);
  t.same(texts("sh -c 'rm -rf /'"), ['sh -c rm -rf /', 'rm -rf /']);
  t.same(texts('bash -lc "echo hi; reboot"'), ['bash -lc echo hi; reboot', 'echo hi', 'reboot']);
  t.same(texts('eval rm -rf /'), ['eval rm -rf /', 'rm -rf /']);
  t.same(texts('sudo -u root -H rm -rf /'), ['sudo -u root -H rm -rf /', 'rm -rf /']);
  t.same(texts('env -i PATH=/bin nice -n 5 nohup timeout -s KILL 10 rm -rf /'), [
    'env -i PATH=/bin nice -n 5 nohup timeout -s KILL 10 rm -rf /',
    'nice -n 5 nohup timeout -s KILL 10 rm -rf /',
    'nohup timeout -s KILL 10 rm -rf /',
    'timeout -s KILL 10 rm -rf /',
    'rm -rf /',
  ]);
  t.same(texts('find / -name x -exec rm -rf {} \\;'), ['find / -name x -exec rm -rf {} ;', 'rm -rf {}']);
  t.same(texts('xargs -n 1 rm -f < list'), ['xargs -n 1 rm -f', 'rm -f']);
  t.same(texts('echo $((1+2))'), ['echo $((1+2))'], 'arithmetic is not a command');
  t.same(texts("cat <<'EOF'\nrm -rf /\nEOF\necho done"), ['cat', 'echo done'], 'a quoted here-document is data');
  t.same(texts('cat <<EOF\n$(reboot)\nEOF'), ['cat', 'reboot'], 'an unquoted one expands its substitutions');
});

t.test('a program that is not a literal word is opaque', async (t) => {
  t.same(texts('$CMD -rf /'), ['OPAQUE:$CMD -rf /']);
  t.same(texts('$(echo rm) -rf /'), ['echo rm', 'OPAQUE:$(echo rm) -rf /']);
  t.same(texts('/usr/bin/r[m] -rf /'), ['OPAQUE:/usr/bin/r[m] -rf /']);
  t.same(texts("echo 'unterminated"), ["OPAQUE:echo 'unterminated"]);
  t.same(texts('case x in a) rm -rf /;; esac'), ['OPAQUE:case x in a) rm -rf /;; esac']);
});

t.test('scp requests', async (t) => {
  t.same(scpRequest(['scp', '-t', '/var/www']), { direction: 'upload', target: '/var/www', directory: false });
  t.same(scpRequest(['scp', '-r', '-p', '-t', '--', '/srv']), { direction: 'upload', target: '/srv', directory: true });
  t.same(scpRequest(['/usr/bin/scp', '-v', '-f', 'a b']), { direction: 'download', target: 'a b', directory: false });
  t.equal(scpRequest(['scp', '-t']), null);
  t.equal(scpRequest(['scp', '-x', '-t', '/a']), null, 'an unknown flag is not scp protocol');
  t.equal(scpRequest(['scp', 'a', 'b']), null);
});

const identity: Identity = { subject: 'svc:deploy', issuer: 'ssh-key', groups: ['deployers'], claims: {} };
const connector = { name: 'web', type: 'ssh' };

function policy(rules: Parameters<typeof compilePolicy>[0]) {
  const p = compilePolicy(rules, { connectorType: 'ssh' });
  if (!p.ok) throw new Error(p.error.message);
  return (units: ReturnType<typeof execUnits>['units']) => {
    for (const u of units) {
      const d = p.value.decide(u, identity, connector);
      if (d.action !== 'allow') return `${d.action}:${d.rule}`;
    }
    return 'allow';
  };
}

t.test('rules over exec units: command globs cross "/", program names, every command judged', async (t) => {
  const judge = policy([
    { name: 'no-rm', match: { command: ['rm -rf *', 'shutdown*'] }, action: 'deny' },
    { name: 'no-curl', match: { program: ['curl', 'wget'] }, action: 'deny' },
  ]);
  const j = (line: string) => judge(execUnits(line).units);
  t.equal(j('rm -rf /var/www'), 'deny:no-rm', '* matches across /');
  t.equal(j('/bin/rm -rf /var/www'), 'deny:no-rm', 'the program by path matches by its name');
  t.equal(j('cd /tmp && rm -rf *'), 'deny:no-rm');
  t.equal(j('echo ok; shutdown -r now'), 'deny:no-rm');
  t.equal(j('/usr/bin/curl -s http://x | sh'), 'deny:no-curl');
  t.equal(j('rm -f one-file'), 'allow');
  t.equal(j('ls -la /var/www'), 'allow');
  t.equal(j('RM -RF /'), 'deny:no-rm', 'matching is case-insensitive (stricter for deny)');
});

t.test('an allow list: every command of the line must be allowed', async (t) => {
  const judge = policy([
    { name: 'deploy', match: { program: ['/usr/local/bin/deploy', 'git', 'echo'] }, action: 'allow' },
    { name: 'nothing-else', match: { channel: ['exec', 'shell', 'sftp', 'scp'] }, action: 'deny' },
  ]);
  const j = (line: string) => judge(execUnits(line).units);
  t.equal(j('/usr/local/bin/deploy --env prod'), 'allow');
  t.equal(j('git pull && echo done'), 'allow');
  t.equal(j('git pull; rm -rf /'), 'deny:nothing-else', 'one refused command refuses the line');
  t.equal(j('echo $(id)'), 'deny:nothing-else', 'the substitution is a command of its own');
  t.equal(j('$X'), 'deny:nothing-else');
});

t.test('the opaque default, channels, paths, CEL', async (t) => {
  const judge = policy([{ name: 'no-rm', match: { command: ['rm *'] }, action: 'deny' }]);
  t.equal(judge(execUnits('$CMD /').units), 'deny:opaque-procedure', 'an opaque program is refused where deny rules exist');
  t.equal(policy([])(execUnits('$CMD /').units), 'allow', 'and allowed where no rule refuses anything');

  const channels = policy([
    { name: 'no-shell', match: { channel: ['shell'] }, action: 'review' },
    { name: 'no-tunnels', match: { channel: ['direct-tcpip'] }, action: 'deny' },
    { name: 'no-etc', match: { path: ['/etc/**'] }, action: 'deny' },
    { name: 'no-sftp-remove', match: { channel: ['sftp'], command: ['sftp remove *'] }, action: 'deny' },
  ]);
  t.equal(channels([shellUnit('xterm')]), 'review:no-shell');
  t.equal(channels([forwardUnit('10.0.0.5', 5432, { host: '127.0.0.1', port: 1 })]), 'deny:no-tunnels');
  t.equal(channels([sftpUnit('read', ['/etc/shadow'], false)]), 'deny:no-etc');
  t.equal(channels([sftpUnit('read', ['/home/x/etc/a'], false)]), 'allow', '`/etc/**` is anchored');
  t.equal(channels([sftpUnit('remove', ['/srv/a'], false)]), 'deny:no-sftp-remove');
  t.equal(channels(execUnits('scp -t /etc/cron.d').units), 'deny:no-etc');
  t.equal(channels([subsystemUnit('sftp')]), 'allow');
  t.equal(execUnits('/usr/lib/openssh/sftp-server').channel, 'sftp', 'an exec of sftp-server is an sftp channel');

  const cel = policy([{ name: 'no-force', when: 'command.program == "git" && "--force" in command.argv', action: 'deny' }]);
  t.equal(cel(execUnits('git push --force origin main').units), 'deny:no-force');
  t.equal(cel(execUnits('git push origin main').units), 'allow');

  const typo = compilePolicy([{ name: 'x', match: { channel: ['shel'] }, action: 'deny' }], { connectorType: 'ssh' });
  t.match(typo, { ok: false, error: { message: /"shel" can never match/ } });
  const unknown = compilePolicy([{ name: 'x', match: { statement: ['drop'] }, action: 'deny' }], { connectorType: 'ssh' });
  t.match(unknown, { ok: false, error: { message: /unknown match key "statement" for ssh connectors \(known: command, program, channel, path\)/ } });
});
