/**
 * The SSH connector's readers, on bytes cut at every boundary: the scp protocol (files,
 * directories, a refused file withheld, malformed lines, names with `/`), SFTP packets
 * (framing limits, OPEN…CLOSE followed per handle with SHA-256, out-of-order access, a
 * refusal answered as a STATUS), known_hosts matching, and the failed-login limiter.
 */
import t from 'tap';
import { parseConfig } from '@gatehouse/core';
import { sshConnector } from '@gatehouse/connector-ssh';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import {
  FailureLimiter,
  FXP,
  KnownHosts,
  matchesHost,
  parseSize,
  ScpStream,
  SftpFramer,
  SftpTracker,
  type ScpFile,
  type SftpFileReport,
  type SftpOpReport,
} from '@gatehouse/connector-ssh';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Feed `bytes` in chunks of `n` (1 = every byte boundary). */
function feed(s: ScpStream, bytes: Buffer, n: number) {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += n) {
    const v = s.push(bytes.subarray(i, i + n));
    out.push(...v.forward);
    if (v.refused || v.error) return { out: Buffer.concat(out), refused: v.refused, error: v.error };
  }
  return { out: Buffer.concat(out) };
}

t.test('scp: files and directories, any chunking, forwarded byte for byte', async (t) => {
  const a = randomBytes(70_000);
  const b = Buffer.from('hello\n');
  const stream = Buffer.concat([
    Buffer.from('D0755 0 site\n'),
    Buffer.from('T1700000000 0 1700000000 0\n'),
    Buffer.from(`C0644 ${a.length} a.bin\n`),
    a,
    Buffer.from([0]),
    Buffer.from(`C0600 ${b.length} b.txt\n`),
    b,
    Buffer.from([0]),
    Buffer.from('E\n'),
  ]);
  for (const n of [1, 7, 4096, stream.length]) {
    const files: ScpFile[] = [];
    const judged: string[] = [];
    const s = new ScpStream(
      { direction: 'upload', target: '/srv/www', directory: true },
      (p, k) => (judged.push(`${k}:${p}`), null),
      (f) => files.push(f),
    );
    const r = feed(s, stream, n);
    t.ok(r.out.equals(stream), `chunks of ${n}: forwarded unchanged`);
    t.same(judged, ['directory:/srv/www/site', 'file:/srv/www/site/a.bin', 'file:/srv/www/site/b.txt']);
    t.same(
      files.map((f) => [f.path, f.size, f.sha256, f.complete]),
      [
        ['/srv/www/site/a.bin', a.length, sha(a), true],
        ['/srv/www/site/b.txt', b.length, sha(b), true],
      ],
    );
  }
});

t.test('scp: a single file to a target path; a download; a refused file is withheld; bad lines stop', async (t) => {
  const single = new ScpStream(
    { direction: 'upload', target: '/tmp/renamed.txt', directory: false },
    () => null,
    () => {},
  );
  feed(single, Buffer.concat([Buffer.from('C0644 2 local.txt\n'), Buffer.from('hi'), Buffer.from([0])]), 3);
  t.equal(single.files[0].path, '/tmp/renamed.txt');
  t.equal(single.files[0].name, 'local.txt');

  const down = new ScpStream(
    { direction: 'download', target: '/var/log/app.log', directory: false },
    () => null,
    () => {},
  );
  feed(down, Buffer.concat([Buffer.from('C0644 3 app.log\n'), Buffer.from('abc'), Buffer.from([0])]), 5);
  t.match(down.files[0], { path: '/var/log/app.log', sha256: sha(Buffer.from('abc')), complete: true });

  const refusing = new ScpStream(
    { direction: 'upload', target: '/srv', directory: true },
    (p) => (p.endsWith('secret.key') ? 'denied by rule "no-keys"' : null),
    () => {},
  );
  const body = Buffer.concat([Buffer.from('C0644 1 ok.txt\n'), Buffer.from('x'), Buffer.from([0]), Buffer.from('C0600 4 secret.key\n'), Buffer.from('KEYS'), Buffer.from([0])]);
  const r = feed(refusing, body, 2);
  t.match(r.refused, { path: '/srv/secret.key', reason: /no-keys/ });
  t.notOk(r.out.includes('secret.key'), 'the refused control line never reaches the target');
  t.ok(r.out.includes('ok.txt'));

  for (const bad of ['C0644 1 ../etc/passwd\n', 'C0644 1 a/b\n', 'X hello\n', 'E\n', `C0644 1 ${'x'.repeat(5000)}\n`]) {
    const s = new ScpStream(
      { direction: 'upload', target: '/srv', directory: true },
      () => null,
      () => {},
    );
    t.ok(feed(s, Buffer.from(bad), 64).error, `refused: ${bad.slice(0, 20).trim()}`);
  }
  const cut = new ScpStream(
    { direction: 'upload', target: '/srv', directory: true },
    () => null,
    () => {},
  );
  feed(cut, Buffer.concat([Buffer.from('C0644 10 part.bin\n'), Buffer.from('12345')]), 100);
  cut.end();
  t.match(cut.files[0], { bytes: 5, complete: false }, 'a transfer cut short is reported incomplete');
});

/** An SFTP packet: type, then fields (numbers as uint32, bigint as uint64, buffers/strings as strings). */
function pkt(type: number, ...fields: (number | bigint | string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([type])];
  for (const f of fields) {
    if (typeof f === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f);
      parts.push(b);
    } else if (typeof f === 'bigint') {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(f);
      parts.push(b);
    } else {
      const v = Buffer.isBuffer(f) ? f : Buffer.from(f);
      const n = Buffer.alloc(4);
      n.writeUInt32BE(v.length);
      parts.push(n, v);
    }
  }
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

t.test('sftp framing: whole packets from any chunking; oversized packets refused', async (t) => {
  const a = pkt(FXP.INIT, 3);
  const b = pkt(FXP.OPEN, 1, '/etc/hosts', 1, 0);
  const both = Buffer.concat([a, b]);
  const f = new SftpFramer();
  const got: Buffer[] = [];
  for (let i = 0; i < both.length; i++) got.push(...f.push(both.subarray(i, i + 1)));
  t.same(
    got.map((x) => x.toString('hex')),
    [a.toString('hex'), b.toString('hex')],
  );
  const big = Buffer.alloc(4);
  big.writeUInt32BE(10 * 1024 * 1024);
  const g = new SftpFramer();
  g.push(big);
  t.match(g.error, /limit/);
});

t.test('sftp: an upload and a download followed from OPEN to CLOSE, with SHA-256', async (t) => {
  const files: SftpFileReport[] = [];
  const ops: SftpOpReport[] = [];
  const tr = new SftpTracker(
    (f) => files.push(f),
    (o) => ops.push(o),
  );
  tr.request(pkt(FXP.INIT, 3));
  tr.response(pkt(FXP.VERSION, 3));
  // realpath(".") tells the working folder: relative paths resolve against it.
  t.equal(tr.request(pkt(FXP.REALPATH, 1, '.')), null);
  tr.response(pkt(FXP.NAME, 1, 1, '/home/deploy', '/home/deploy', Buffer.alloc(4)));
  const up = randomBytes(100_000);
  const open = tr.request(pkt(FXP.OPEN, 2, 'upload.bin', 2 | 8 | 16, 0));
  t.match(open, { op: 'write', paths: ['/home/deploy/upload.bin'], unresolved: false });
  tr.response(pkt(FXP.HANDLE, 2, Buffer.from('h1')));
  for (let off = 0, id = 10; off < up.length; off += 32768, id++) {
    tr.request(pkt(FXP.WRITE, id, Buffer.from('h1'), BigInt(off), up.subarray(off, off + 32768)));
    tr.response(pkt(FXP.STATUS, id, 0, '', ''));
  }
  tr.request(pkt(FXP.CLOSE, 50, Buffer.from('h1')));
  tr.response(pkt(FXP.STATUS, 50, 0, '', ''));
  t.match(files[0], { path: '/home/deploy/upload.bin', direction: 'upload', bytesWritten: up.length, sha256: sha(up), complete: true, flags: ['write', 'create', 'truncate'] });

  // A download whose reads are answered in order, and one read out of order (no hash then).
  tr.request(pkt(FXP.OPEN, 60, '/srv/data.csv', 1, 0));
  tr.response(pkt(FXP.HANDLE, 60, Buffer.from('h2')));
  const down = randomBytes(50_000);
  tr.request(pkt(FXP.READ, 61, Buffer.from('h2'), 0n, 32768));
  tr.request(pkt(FXP.READ, 62, Buffer.from('h2'), 32768n, 32768));
  tr.request(pkt(FXP.READ, 63, Buffer.from('h2'), 65536n, 32768));
  tr.response(pkt(FXP.DATA, 61, down.subarray(0, 32768)));
  tr.response(pkt(FXP.DATA, 62, down.subarray(32768)));
  tr.response(pkt(FXP.STATUS, 63, 1, 'EOF', ''));
  tr.request(pkt(FXP.CLOSE, 64, Buffer.from('h2')));
  tr.response(pkt(FXP.STATUS, 64, 0, '', ''));
  t.match(files[1], { path: '/srv/data.csv', direction: 'download', bytesRead: down.length, sha256: sha(down), complete: true });

  tr.request(pkt(FXP.OPEN, 70, '/srv/random', 1, 0));
  tr.response(pkt(FXP.HANDLE, 70, Buffer.from('h3')));
  tr.request(pkt(FXP.READ, 71, Buffer.from('h3'), 4096n, 10));
  tr.response(pkt(FXP.DATA, 71, Buffer.alloc(10)));
  tr.end();
  t.match(files[2], { path: '/srv/random', sha256: null, complete: false }, 'out of order: no hash, and said so');

  // Other judged operations, and the refusal answer.
  const rm = tr.request(pkt(FXP.REMOVE, 80, '/srv/old'))!;
  t.match(rm, { op: 'remove', paths: ['/srv/old'] });
  const reply = tr.refuse(rm, 'gatehouse: denied by rule "x"');
  const [len, type, id, code] = [reply.readUInt32BE(0), reply[4], reply.readUInt32BE(5), reply.readUInt32BE(9)];
  t.same([len, type, id, code], [reply.length - 4, FXP.STATUS, 80, 3]);
  t.match(tr.request(pkt(FXP.RENAME, 81, '/a', '/b')), { op: 'rename', paths: ['/a', '/b'] });
  t.match(tr.request(pkt(FXP.EXTENDED, 82, 'posix-rename@openssh.com', '/c', '/d')), { op: 'rename', paths: ['/c', '/d'] });
  t.equal(tr.request(pkt(FXP.EXTENDED, 83, 'statvfs@openssh.com', '/')), null, 'read-only extensions are not judged');
  t.match(tr.request(pkt(FXP.EXTENDED, 84, 'weird@example.com')), { op: 'extended:weird@example.com' });
  tr.response(pkt(FXP.STATUS, 81, 0, '', ''));
  t.match(ops, [{ op: { op: 'rename' }, status: 0 }]);
  tr.request(Buffer.from([0, 0, 0, 2, FXP.OPEN, 1]));
  t.match(tr.error, /malformed SFTP request/);
});

t.test('sftp: a relative path before the working folder is known cannot be judged by path', async (t) => {
  const tr = new SftpTracker(
    () => {},
    () => {},
  );
  t.match(tr.request(pkt(FXP.OPEN, 1, '../../etc/shadow', 1, 0)), { paths: ['../../etc/shadow'], unresolved: true });
  t.match(tr.request(pkt(FXP.OPEN, 2, '/srv/../etc/shadow', 1, 0)), { paths: ['/etc/shadow'], unresolved: false }, 'dot-dot normalised');
});

t.test('known_hosts: patterns, ports, hashed names, negation, revoked keys', async (t) => {
  const key = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIJ3G9OaN+xvFMk3eLH+WEhl1Uv3P9IbLLw0dVg676Kq/', 'base64');
  const other = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIGNtFL684vxr3cIECprk1wU/qbwmnJ3mVFt8YPxmgNs9', 'base64');
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[db.internal]:2222').digest('base64')}`;
  const kh = new KnownHosts(
    [
      '# comment',
      `web1.example.com,10.0.0.5 ssh-ed25519 ${key.toString('base64')}`,
      `[10.0.0.6]:2222 ssh-ed25519 ${key.toString('base64')}`,
      `${hashed} ssh-ed25519 ${key.toString('base64')}`,
      `*.prod.example.com,!bastion.prod.example.com ssh-ed25519 ${key.toString('base64')}`,
      `@revoked * ssh-ed25519 ${other.toString('base64')}`,
      `@cert-authority *.example.com ssh-ed25519 ${key.toString('base64')}`,
      'garbage line',
    ].join('\n'),
  );
  t.equal(kh.check('web1.example.com', 22, key).verdict, 'known');
  t.equal(kh.check('10.0.0.5', 22, key).verdict, 'known');
  t.equal(kh.check('10.0.0.5', 2200, key).verdict, 'unknown', 'another port is another host');
  t.equal(kh.check('10.0.0.6', 2222, key).verdict, 'known');
  t.equal(kh.check('db.internal', 2222, key).verdict, 'known', 'hashed names');
  t.equal(kh.check('app.prod.example.com', 22, key).verdict, 'known');
  t.equal(kh.check('bastion.prod.example.com', 22, key).verdict, 'unknown', 'negated');
  t.equal(kh.check('web1.example.com', 22, Buffer.from('other key')).verdict, 'mismatch');
  t.equal(kh.check('web1.example.com', 22, other).verdict, 'revoked');
  t.same(kh.check('10.0.0.5', 22, key).types, ['ssh-ed25519']);
  t.equal(kh.ignored.length, 2, '@cert-authority and the garbage line are reported');
  t.notOk(matchesHost(['*.example.com'], 'example.com'));
});

t.test('failed logins per address: blocked after max within the window, then released', async (t) => {
  let now = 0;
  const l = new FailureLimiter(3, 60_000, 2, () => now);
  t.notOk(l.fail('a'));
  t.notOk(l.fail('a'));
  t.notOk(l.blocked('a'));
  t.ok(l.fail('a'), 'the third failure blocks');
  t.ok(l.blocked('a'));
  t.notOk(l.blocked('b'), 'per address');
  now = 61_000;
  t.notOk(l.blocked('a'), 'released when the failures are older than the window');
  l.fail('x');
  l.fail('y');
  l.fail('z');
  t.notOk(l.blocked('x'), 'bounded memory: the oldest address is dropped');
});

t.test('sizes', async (t) => {
  t.equal(parseSize('50MB'), 50 * 1024 * 1024);
  t.equal(parseSize('512KiB'), 512 * 1024);
  t.equal(parseSize(4096), 4096);
  t.throws(() => parseSize('lots'));
});

t.test('config: defaults, and keys that would be ignored or are missing are refused', async (t) => {
  const base = (extra = '', upstream = 'private_key: "-----BEGIN OPENSSH PRIVATE KEY-----x", known_hosts: "h ssh-ed25519 AAAA"') =>
    `data_dir: /tmp/x\nconnectors:\n  - name: s\n    type: ssh\n    listen: 127.0.0.1:0\n    upstream: { address: 10.0.0.5:22, user: deploy, ${upstream} }\n${extra}`;
  const parse = (text: string) => parseConfig(text, 'g.yaml', { connectors: [sshConnector] });
  const good = parse(base());
  if (!good.ok) throw good.error;
  t.match(good.value.connectors[0], {
    host_key: 'data_dir',
    recording: { input: false, max_bytes: '50MB' },
    idle_timeout: 1_800_000,
    keepalive_interval: 15_000,
    max_auth_failures: 10,
    upstream: { trust_on_first_use: false, connect_timeout: 10_000 },
  });
  const refused = (text: string, re: RegExp) => {
    const r = parse(text);
    t.match(r.ok ? 'accepted' : r.error.message, re);
  };
  refused(base('    tls: { cert: a, key: b }\n'), /ssh connectors do not use tls/);
  refused(base('', 'known_hosts: "h ssh-ed25519 AAAA"'), /needs private_key or password/);
  refused(base('', 'password: x'), /needs known_hosts .* or trust_on_first_use/);
  refused(base('', 'password: x, trust_on_first_use: true, passphrase: y'), /passphrase needs private_key/);
  refused(base('    masking: [ { columns: [ssn], with: redact } ]\n'), /detectors only/);
  refused(base('    recording: { max_bytes: 10 }\n'), /max_bytes/);
  refused(base('    rules: [ { name: x, match: { statement: [drop] }, action: deny } ]\n'), /accepted/);
  const id = parseConfig(`data_dir: /tmp/x\nidentity:\n  ssh_keys: [ { key: "ssh-dss AAAA", subject: x } ]\n`, 'g.yaml', { connectors: [sshConnector] });
  t.match(id.ok ? 'accepted' : id.error.message, /ssh_keys\[0\]\.key/);
});
