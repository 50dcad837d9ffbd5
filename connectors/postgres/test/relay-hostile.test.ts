/**
 * The relay against a scripted upstream: response sequences that lose track of which
 * request a message belongs to (the desync attack), stale result shapes, unsolicited rows,
 * and values in notices, errors, notifications and parameter status. A real PostgreSQL
 * produces most of these only under a hostile caller's timing; here each one is played
 * exactly, so each guarantee is checked in isolation. (End-to-end versions of the same
 * attacks run against a real PostgreSQL in test/e2e/postgres/hostile.test.ts.)
 */
import t from 'tap';
import { B, bindMessage, describePortalMessage, executeMessage, F, message, parseMessage, queryMessage } from '../src/wire.js';
import { bindComplete, CARD, complete, cstr, dataRow, error, fields, i32, MASKED_CARD, parseComplete, rfq, rowDesc, rowsOf, setup, sync, texts } from './scripted-relay.js';

t.test('desync: an error during Execute does not unhook the next statement (masked and audited)', async (t) => {
  const h = await setup(t, (batch, n) => {
    if (n === 0) return [parseComplete(), bindComplete(), rowDesc('x'), error('22012', 'division by zero'), rfq()];
    return [rowDesc('id', 'card_number'), dataRow('1', CARD), complete('SELECT 1'), rfq()];
  });
  let got = await h.send([parseMessage('', 'SELECT 1/(id-1) AS x FROM cards WHERE $1'), bindMessage('', ''), describePortalMessage(''), executeMessage(''), sync()], 1);
  t.match(texts(got, B.ErrorResponse).join(), /division by zero/);
  got = await h.send([queryMessage('SELECT * FROM cards')], 2);
  const rows = rowsOf(got);
  t.equal(rows.length, 1);
  t.notMatch(rows[0], CARD, 'the second statement is masked');
  t.match(rows[0], MASKED_CARD);
  const units = h.audit.units().map((e) => [e.unit?.text, e.result?.status]);
  t.same(
    units,
    [
      ['SELECT 1/(id-1) AS x FROM cards WHERE $1', '22012'],
      ['SELECT * FROM cards', 'SELECT 1'],
    ],
    'both statements are in the trail',
  );
});

t.test('a row with no matching request closes the session (audited), never passed on', async (t) => {
  const h = await setup(t, (_b, n) => (n === 0 ? [rowDesc('a'), dataRow('1'), complete('SELECT 1'), rfq(), dataRow(CARD)] : []));
  const got = await h.send([queryMessage('SELECT 1 AS a')], 5);
  await h.ended;
  t.notOk(
    rowsOf(got).some((r) => r.includes(CARD.slice(4))),
    'the unsolicited row never reached the caller',
  );
  t.match(texts(got, B.ErrorResponse).join(), /unsolicited/);
  t.ok(h.isClosed(), 'session closed');
  t.ok(
    h.audit.events.some((e) => e.kind === 'protocol.error' && /unsolicited/.test(String(e.meta?.error))),
    'audited',
  );
});

t.test('a row before any RowDescription in a simple query closes the session for a masked caller', async (t) => {
  const h = await setup(t, () => [dataRow(CARD), complete('SELECT 1'), rfq()]);
  const got = await h.send([queryMessage('SELECT card_number FROM cards')], 5);
  await h.ended;
  t.same(rowsOf(got), [], 'no row relayed');
  t.match(texts(got, B.ErrorResponse).join(), /not described/);
});

t.test('a row that does not match its description closes the session', async (t) => {
  const h = await setup(t, () => [rowDesc('id'), dataRow('1', CARD), complete('SELECT 1'), rfq()]);
  const got = await h.send([queryMessage('SELECT id FROM cards')], 5);
  await h.ended;
  t.same(rowsOf(got), []);
  t.match(texts(got, B.ErrorResponse).join(), /does not match its description/);
});

t.test('an Execute of a portal not bound by the caller (a SQL cursor) is described first, every time', async (t) => {
  const h = await setup(t, (batch) => {
    const out: Buffer[] = [];
    for (const f of batch) {
      if (f.type === F.Query) out.push(complete('DECLARE CURSOR'), rfq());
      if (f.type === F.Describe) out.push(rowDesc('id', 'card_number'));
      if (f.type === F.Execute) out.push(dataRow('1', CARD), complete('FETCH 1'));
      if (f.type === F.Sync) out.push(rfq());
    }
    return out;
  });
  await h.send([queryMessage('BEGIN; DECLARE c CURSOR FOR SELECT * FROM cards')], 1);
  const got = await h.send([executeMessage('c'), sync(), executeMessage('c'), sync()], 3);
  const rows = rowsOf(got);
  t.equal(rows.length, 2);
  for (const r of rows) t.notMatch(r, CARD, 'masked');
  const describes = h.upstreamSeen.filter((f) => f.type === F.Describe).length;
  t.equal(describes, 2, 'the relay asked for the shape before each Execute');
  t.notOk(texts(got, B.RowDescription).length, 'its own Describe answers are not passed to the caller');
});

t.test('a portal re-declared under the same name after its Describe is described again', async (t) => {
  let n = 0;
  const h = await setup(t, (batch) => {
    const out: Buffer[] = [];
    for (const f of batch) {
      if (f.type === F.Parse) out.push(parseComplete());
      if (f.type === F.Bind) out.push(bindComplete());
      // First shape: card_number in column 1; after the re-declaration: in column 2.
      if (f.type === F.Describe) out.push(n++ === 0 ? rowDesc('card_number') : rowDesc('id', 'card_number'));
      if (f.type === F.Execute) out.push(n <= 1 ? dataRow(CARD) : dataRow('7', CARD), complete('FETCH 1'));
      if (f.type === F.Query) out.push(complete('CLOSE CURSOR'), complete('DECLARE CURSOR'), rfq());
      if (f.type === F.Sync) out.push(rfq());
    }
    return out;
  });
  await h.send([parseMessage('s', 'SELECT card_number FROM cards'), bindMessage('p', 's'), describePortalMessage('p'), executeMessage('p'), sync()], 1);
  await h.send([queryMessage('CLOSE p; DECLARE p CURSOR WITH HOLD FOR SELECT id, card_number FROM cards')], 2);
  const got = await h.send([executeMessage('p'), sync()], 3);
  const rows = rowsOf(got);
  t.equal(rows.length, 2);
  for (const r of rows) t.notMatch(r, CARD, 'every row masked, in whichever column it moved to');
});

t.test('a Describe skipped after an error leaves no stale shape behind', async (t) => {
  let phase = 0;
  const h = await setup(t, (batch) => {
    const out: Buffer[] = [];
    if (phase++ === 0) return [error('34000', 'portal "p" does not exist'), rfq()];
    for (const f of batch) {
      if (f.type === F.Describe) out.push(rowDesc('id', 'card_number'));
      if (f.type === F.Execute) out.push(dataRow('1', CARD), complete('FETCH 1'));
      if (f.type === F.Sync) out.push(rfq());
    }
    return out;
  });
  await h.send([describePortalMessage('p'), executeMessage('p'), sync()], 1);
  const got = await h.send([executeMessage('p'), sync()], 2);
  t.equal(rowsOf(got).length, 1);
  t.notMatch(rowsOf(got)[0], CARD);
});

t.test('notices, errors, notifications and parameter status are masked; the trail holds the masked text', async (t) => {
  const h = await setup(t, () => [
    fields(B.NoticeResponse, { S: 'NOTICE', V: 'NOTICE', C: '00000', M: `card ${CARD}`, D: `detail ${CARD}`, H: `hint ${CARD}` }),
    message(B.NotificationResponse, Buffer.concat([i32(42), cstr('chan'), cstr(`payload ${CARD}`)])),
    message(B.ParameterStatus, Buffer.concat([cstr('application_name'), cstr(CARD)])),
    error('23505', 'duplicate key value violates unique constraint "cards_card_number_key"', { D: 'Key (card_number)=(5500 0000 0000 0004x) already exists.' }),
    rfq(),
  ]);
  const got = await h.send([queryMessage("INSERT INTO cards (card_number) VALUES ('x')")], 1);
  const all = got.map((f) => f.bytes.toString('latin1')).join('|');
  t.notMatch(all, CARD, 'no clear card number in any message');
  t.notMatch(all, '5500 0000 0000 0004x', 'a unique-violation detail on a masked column is masked');
  t.match(all, 'Key (card_number)=([masked])');
  t.match(all, `payload ${MASKED_CARD}`);
  t.match(all, `hint ${MASKED_CARD}`);
  t.notMatch(JSON.stringify(h.audit.events), CARD, 'nor in the audit events');
});

t.test('a statement after a failed one in a simple query is recorded as not executed', async (t) => {
  const h = await setup(t, () => [rowDesc('a'), dataRow('1'), complete('SELECT 1'), error('22012', 'division by zero'), rfq()]);
  await h.send([queryMessage('SELECT 1 AS a; SELECT 1/0; SELECT 3')], 1);
  t.same(
    h.audit.units().map((e) => [e.unit?.text, e.result?.status]),
    [
      ['SELECT 1 AS a', 'SELECT 1'],
      ['SELECT 1/0', '22012'],
      ['SELECT 3', 'skipped'],
    ],
  );
});
