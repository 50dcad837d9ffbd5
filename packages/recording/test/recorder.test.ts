import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRecorder, readRecording, recordingPath } from '../src/index.js';

t.test('a recording round-trips its header and entries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const id = randomUUID();
  const rec = createRecorder({ dataDir: dir }).open(id, { connector: 'db', subject: 'svc:a' });
  rec.append({ t: 1, type: 'statement', text: 'select 1', rows: 1 });
  rec.append({ t: 5, type: 'statement', text: 'select 2', rows: 1, sample: [['2']] });
  await rec.close();
  const r = readRecording(dir, id);
  t.equal(r.header.session, id);
  t.equal(r.header.subject, 'svc:a');
  t.same(
    r.entries.map((e) => e.text),
    ['select 1', 'select 2'],
  );
  t.equal(statSync(recordingPath(dir, id)).mode & 0o777, 0o600, 'recording is private to the gateway user');
});

t.test('a recording stops at its cap and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const id = randomUUID();
  const rec = createRecorder({ dataDir: dir, maxBytes: 300 }).open(id, {});
  for (let i = 0; i < 50; i++) rec.append({ t: i, type: 'statement', text: `select ${i}` });
  await rec.close();
  const r = readRecording(dir, id);
  t.ok(r.entries.length < 50, 'later entries were dropped');
  t.equal(r.entries.at(-1)?.type, 'truncated');
});

t.test('session ids are validated before touching the filesystem', async (t) => {
  t.throws(() => recordingPath('/tmp', '../../etc/passwd'));
});
