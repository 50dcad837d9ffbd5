/**
 * The request/response state machine against a scripted upstream: pipelines, a refusal in
 * the middle of a pipeline, skip-to-Sync after an error, COPY in and out, a cancelled
 * statement. Each asserts what the caller receives, what reaches the upstream, and what the
 * audit trail holds.
 */
import t from 'tap';
import { B, bindMessage, executeMessage, F, message, parseMessage, queryMessage } from '../src/wire.js';
import { bindComplete, complete, dataRow, error, parseComplete, rfq, rowDesc, rowsOf, setup, sync, texts } from './scripted-relay.js';

const copyData = (s: string) => message(B.CopyData, Buffer.from(s));
const copyDone = () => message(B.CopyDone, Buffer.alloc(0));
const copyOut = () => message(B.CopyOutResponse, Buffer.from([0, 0, 1, 0, 0]));
const copyIn = () => message(B.CopyInResponse, Buffer.from([0, 0, 1, 0, 0]));
const describe = (portal: string) => message(F.Describe, `P${portal}\0`);
const units = (audit: { units(): { unit?: { text: string }; decision?: { action: string }; result?: { status?: unknown } }[] }) =>
  audit.units().map((e) => [e.unit?.text, e.decision?.action, e.result?.status]);

/** Answers Parse/Bind/Describe/Execute in order; Execute of statement i returns one row. */
function extendedAnswers(failAtExecute = -1) {
  let executes = 0;
  let skipping = false;
  return (batch: { type: number }[]) => {
    const out: Buffer[] = [];
    for (const f of batch) {
      if (f.type === F.Sync) {
        skipping = false;
        out.push(rfq());
        continue;
      }
      if (skipping) continue;
      if (f.type === F.Parse) out.push(parseComplete());
      if (f.type === F.Bind) out.push(bindComplete());
      if (f.type === F.Describe) out.push(rowDesc('n'));
      if (f.type === F.Execute) {
        if (executes++ === failAtExecute) {
          out.push(error('22012', 'division by zero'));
          skipping = true;
        } else out.push(dataRow(String(executes)), complete('SELECT 1'));
      }
    }
    return out;
  };
}

const stmt = (sql: string) => [parseMessage('', sql), bindMessage('', ''), describe(''), executeMessage('')];

t.test('a pipeline of three statements: rows in order, three audit events', async (t) => {
  const h = await setup(t, extendedAnswers(), { masking: [] });
  const got = await h.send([...stmt('SELECT 1 AS n'), ...stmt('SELECT 2 AS n'), ...stmt('SELECT 3 AS n'), sync()], 1);
  t.same(rowsOf(got).length, 3);
  t.same(units(h.audit), [
    ['SELECT 1 AS n', 'allow', 'SELECT 1'],
    ['SELECT 2 AS n', 'allow', 'SELECT 1'],
    ['SELECT 3 AS n', 'allow', 'SELECT 1'],
  ]);
});

t.test('a refusal in the middle of a pipeline: the refused statement never reaches the upstream, the rest is skipped to Sync', async (t) => {
  const h = await setup(t, (batch) => {
    const out: Buffer[] = [];
    for (const f of batch) {
      if (f.type === F.Parse) out.push(parseComplete());
      if (f.type === F.Bind) out.push(bindComplete());
      if (f.type === F.Describe) out.push(rowDesc('n'));
      // The first Execute is the caller's SELECT; the second is the gateway's refusal block.
      if (f.type === F.Execute)
        out.push(out.filter((b) => b[0] === B.DataRow).length === 0 ? Buffer.concat([dataRow('1'), complete('SELECT 1')]) : error('42501', 'gatehouse: denied by rule "no-drop"'));
      if (f.type === F.Sync) out.push(rfq());
    }
    return out;
  });
  const got = await h.send([...stmt('SELECT 1 AS n'), ...stmt('DROP TABLE t'), ...stmt('SELECT 3 AS n'), sync()], 1);
  const sent = h.upstreamSeen.map((f) => f.bytes.toString('latin1')).join('|');
  t.notMatch(sent, 'DROP TABLE t', 'the refused statement was never sent');
  t.notMatch(sent, 'SELECT 3', 'what followed it up to Sync was discarded');
  t.match(texts(got, B.ErrorResponse).join(), /denied by rule "no-drop"/);
  t.equal(rowsOf(got).length, 1);
  // The refusal is recorded when it is decided, before the first statement's result arrives.
  t.same(units(h.audit), [
    ['DROP TABLE t', 'deny', '42501'],
    ['SELECT 1 AS n', 'allow', 'SELECT 1'],
  ]);
});

t.test('an error in the middle of a pipeline: the upstream skips to Sync, so does the relay; the next batch is attributed correctly', async (t) => {
  const h = await setup(t, extendedAnswers(1), { masking: [] });
  let got = await h.send([...stmt('SELECT 1 AS n'), ...stmt('SELECT 1/0 AS n'), ...stmt('SELECT 3 AS n'), sync()], 1);
  t.equal(texts(got, B.ErrorResponse).length, 1);
  t.same(units(h.audit), [
    ['SELECT 1 AS n', 'allow', 'SELECT 1'],
    ['SELECT 1/0 AS n', 'allow', '22012'],
  ]);
  got = await h.send([...stmt('SELECT 4 AS n'), sync()], 2);
  t.equal(rowsOf(got).length, 2);
  t.same(units(h.audit)[2], ['SELECT 4 AS n', 'allow', 'SELECT 1'], 'the statement after Sync is recorded');
});

t.test('COPY TO STDOUT: relayed for an unmasked caller, refused with no data for a masked one', async (t) => {
  const answer = () => [copyOut(), copyData('1\t4111111111111111\n'), copyDone(), complete('COPY 1'), rfq()];
  const open = await setup(t, answer, { masking: [] });
  const got = await open.send([queryMessage('COPY cards TO STDOUT')], 1);
  t.equal(texts(got, B.CopyData).length, 1);
  t.same(units(open.audit), [['COPY cards TO STDOUT', 'allow', 'COPY 1']]);

  const masked = await setup(t, answer);
  const refused = await masked.send([queryMessage('COPY cards TO STDOUT')], 1);
  t.equal(texts(refused, B.CopyData).length, 0, 'no copy data reaches a masked caller');
  t.match(texts(refused, B.ErrorResponse).join(), /COPY TO STDOUT is refused/);
  t.same(units(masked.audit), [['COPY cards TO STDOUT', 'deny', '42501']]);
});

t.test('COPY FROM STDIN: the caller streams, the completion is audited', async (t) => {
  const h = await setup(t, (batch) => (batch.some((f) => f.type === F.Query) ? [copyIn()] : [complete('COPY 2'), rfq()]));
  await h.send([queryMessage('COPY cards FROM STDIN')], 0);
  await new Promise((r) => setTimeout(r, 50));
  const got = await h.send([message(F.CopyData, '1\ta\n'), message(F.CopyData, '2\tb\n'), message(F.CopyDone, Buffer.alloc(0))], 1);
  t.equal(texts(got, B.CopyInResponse).length, 1);
  t.equal(h.upstreamSeen.filter((f) => f.type === F.CopyData).length, 2, 'both rows reached the upstream');
  t.same(units(h.audit), [['COPY cards FROM STDIN', 'allow', 'COPY 2']]);
});

t.test('a cancelled statement is recorded with its SQLSTATE and the session goes on', async (t) => {
  let n = 0;
  const h = await setup(t, () =>
    n++ === 0 ? [rowDesc('n'), error('57014', 'canceling statement due to user request'), rfq()] : [rowDesc('n'), dataRow('1'), complete('SELECT 1'), rfq()],
  );
  const got1 = await h.send([queryMessage('SELECT pg_sleep(10) AS n')], 1);
  t.match(texts(got1, B.ErrorResponse).join(), /canceling statement/);
  const got2 = await h.send([queryMessage('SELECT 1 AS n')], 2);
  t.equal(rowsOf(got2).length, 1);
  t.same(units(h.audit), [
    ['SELECT pg_sleep(10) AS n', 'allow', '57014'],
    ['SELECT 1 AS n', 'allow', 'SELECT 1'],
  ]);
});
