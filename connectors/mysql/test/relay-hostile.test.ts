/**
 * The relay's state machine against a scripted upstream: responses that lose track of which
 * command a packet belongs to, rows that do not fit their column definitions, packets out of
 * sequence on either side, a LOCAL INFILE request nobody asked for, and the masking of text and
 * binary rows by origin. Each is played exactly, so each guarantee is checked in isolation.
 */
import t from 'tap';
import { encode, lenencInt, lenencString, okPayload } from '../src/packet.js';
import { TYPE } from '../src/result-shape.js';
import { CARD, column, end, eof, err, errors, finals, MASKED_CARD, ok, packets, query, reply, resultSet, setup, textRow } from './scripted-relay.js';

void packets;

for (const deprecateEof of [true, false]) {
  const mode = deprecateEof ? 'CLIENT_DEPRECATE_EOF' : 'EOF packets';

  t.test(`${mode}: text rows are masked by origin, whatever the alias; the statement is audited`, async (t) => {
    const h = await setup(
      t,
      () =>
        reply(
          resultSet(
            deprecateEof,
            [{ name: 'id', org: 'id', type: TYPE.LONG }, { name: 'x', org: 'card_number' }, { name: 'card_number' }],
            [textRow('1', CARD, 'free text'), textRow('2', null, CARD)],
          ),
        ),
      { deprecateEof },
    );
    const got = await h.send([encode(query('SELECT id, card_number AS x, note AS card_number FROM cards'), 0)], finals(1));
    const rows = got.slice(deprecateEof ? 4 : 5, -1);
    const all = Buffer.concat(got.map((p) => p.payload)).toString('latin1');
    t.notMatch(all, CARD, 'no clear value');
    t.match(all, MASKED_CARD);
    t.equal(rows.length, 2);
    t.same(
      got.map((p) => p.seq),
      got.map((_p, i) => i + 1),
      'sequence ids count up from 1',
    );
    const u = h.audit.units();
    t.equal(u.length, 1);
    t.equal(u[0].result?.rows, 2);
  });

  t.test(`${mode}: binary rows: a string is re-encoded, a BIGINT that cannot hold the mask becomes NULL (bitmap)`, async (t) => {
    const bin = Buffer.concat([Buffer.from([0x00, 0x00]), Buffer.from([1, 0, 0, 0]), lenencString(CARD), Buffer.from([0x0e, 0xe1, 0x4b, 0xbc, 0x30, 0x5e, 0x0e, 0x00])]);
    const h = await setup(
      t,
      (p) => {
        if (p[0] === 0x16)
          return reply([
            Buffer.concat([Buffer.from([0]), Buffer.from([7, 0, 0, 0]), Buffer.from([3, 0]), Buffer.from([0, 0]), Buffer.from([0]), Buffer.from([0, 0])]),
            column({ name: 'id', org: 'id', type: TYPE.LONG }),
            column({ name: 'c', org: 'card_number' }),
            column({ name: 'a', org: 'account_no', type: TYPE.LONGLONG }),
            ...(deprecateEof ? [] : [eof()]),
          ]);
        return reply([
          lenencInt(3),
          column({ name: 'id', org: 'id', type: TYPE.LONG }),
          column({ name: 'c', org: 'card_number' }),
          column({ name: 'a', org: 'account_no', type: TYPE.LONGLONG }),
          ...(deprecateEof ? [] : [eof()]),
          bin,
          end(deprecateEof),
        ]);
      },
      { deprecateEof },
    );
    await h.send(
      [encode(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT id, card_number AS c, account_no AS a FROM cards')]), 0)],
      (ps) => ps.length >= (deprecateEof ? 4 : 5),
    );
    const exec = Buffer.concat([Buffer.from([0x17]), Buffer.from([7, 0, 0, 0]), Buffer.from([0]), Buffer.from([1, 0, 0, 0])]);
    const got = await h.send([encode(exec, 0)], finals(1));
    const row = got.find((p) => p.payload[0] === 0x00 && p.payload.length > 8);
    t.ok(row, 'a binary row');
    if (!row) return;
    const b = row.payload;
    t.equal(b[1] & (1 << 4), 1 << 4, 'the BIGINT (column 3: bit 4) is NULL');
    t.ok(b.includes(Buffer.from(MASKED_CARD)), 'the string is masked');
    t.notOk(b.includes(Buffer.from(CARD)));
    t.equal(b.length, 1 + 1 + 4 + 1 + MASKED_CARD.length, 'lengths re-encoded, the NULL value dropped');
  });

  t.test(`${mode}: multi-statement results are attributed in order; after an error the rest is recorded as skipped`, async (t) => {
    const h = await setup(
      t,
      () =>
        reply([...resultSet(deprecateEof, [{ name: 'a' }], [textRow('1')], 0x000a), okPayload(0x000a, { affectedRows: 3 }), err(1146, '42S02', "Table 'shop.nope' doesn't exist")]),
      { deprecateEof },
    );
    const got = await h.send([encode(query('SELECT 1 AS a; UPDATE t SET a = 1 WHERE id > 0; SELECT * FROM nope; SELECT 4'), 0)], finals(1));
    t.match(errors(got).join(), /doesn't exist/);
    t.same(
      h.audit.units().map((e) => [e.unit?.text, e.result?.status, e.result?.rows]),
      [
        ['SELECT 1 AS a', 'OK', 1],
        ['UPDATE t SET a = 1 WHERE id > 0', 'OK', 3],
        ['SELECT * FROM nope', '42S02', 0],
        ['SELECT 4', 'skipped', undefined],
      ],
    );
  });
}

t.test('a CALL returns result sets before its own OK: one statement, one event', async (t) => {
  const h = await setup(t, () =>
    reply([...resultSet(true, [{ name: 'a' }], [textRow('1')], 0x000a), ...resultSet(true, [{ name: 'b' }], [textRow('2'), textRow('3')], 0x000a), ok(0x0002)]),
  );
  const got = await h.send([encode(query('CALL p()'), 0)], finals(1));
  t.equal(got[got.length - 1].payload[0], 0x00);
  const u = h.audit.units();
  t.equal(u.length, 1);
  t.equal(u[0].result?.rows, 3);
});

t.test('a packet out of sequence from upstream closes the session (audited)', async (t) => {
  const h = await setup(t, () => [encode(lenencInt(1), 1), encode(column({ name: 'card_number', org: 'card_number' }), 3), encode(textRow(CARD), 4)]);
  const got = await h.send([encode(query('SELECT card_number FROM cards'), 0)], () => false);
  await h.ended;
  t.ok(h.isClosed());
  t.notMatch(Buffer.concat(got.map((p) => p.payload)).toString('latin1'), CARD);
  t.match(errors(got).join(), /out of sequence/);
  t.ok(h.audit.events.some((e) => e.kind === 'protocol.error' && /out of sequence/.test(String(e.meta?.error))));
});

t.test('a packet nobody asked for closes the session; it never reaches the caller', async (t) => {
  const h = await setup(t, () => [...reply(resultSet(true, [{ name: 'a' }], [textRow('1')])), encode(textRow(CARD), 0)]);
  const got = await h.send([encode(query('SELECT 1 AS a'), 0)], () => false);
  await h.ended;
  t.notMatch(Buffer.concat(got.map((p) => p.payload)).toString('latin1'), CARD);
  t.match(errors(got).join(), /unsolicited/);
});

t.test('a row that does not match its column definitions closes the session', async (t) => {
  const h = await setup(t, () => reply([lenencInt(1), column({ name: 'id', org: 'id' }), textRow('1', CARD), end(true)]));
  const got = await h.send([encode(query('SELECT id FROM cards'), 0)], () => false);
  await h.ended;
  t.notMatch(Buffer.concat(got.map((p) => p.payload)).toString('latin1'), CARD);
  t.match(errors(got).join(), /does not match/);
});

t.test('a row where a result set should begin closes the session', async (t) => {
  const h = await setup(t, () => reply([textRow(CARD), end(true)]));
  const got = await h.send([encode(query('SELECT card_number FROM cards'), 0)], () => false);
  await h.ended;
  t.notMatch(Buffer.concat(got.map((p) => p.payload)).toString('latin1'), CARD);
});

t.test('a LOCAL INFILE request the statement did not ask for closes the session: no file is asked of the caller', async (t) => {
  const h = await setup(t, () => reply([Buffer.concat([Buffer.from([0xfb]), Buffer.from('/etc/passwd')])]));
  const got = await h.send([encode(query('SELECT 1'), 0)], () => false);
  await h.ended;
  t.notOk(
    got.some((p) => p.payload[0] === 0xfb),
    'the request never reached the caller',
  );
  t.match(errors(got).join(), /local file/);
});

t.test('a caller command out of sequence closes the session (audited)', async (t) => {
  const h = await setup(t, () => reply([ok()]));
  const got = await h.send([encode(query('SELECT 1'), 3)], () => false);
  await h.ended;
  t.match(errors(got).join(), /out of sequence/);
  t.equal(h.upstreamSeen.length, 0, 'nothing forwarded');
  t.ok(h.audit.events.some((e) => e.kind === 'protocol.error'));
});

t.test('pipelined commands: answers stay in order around a refusal; the session continues', async (t) => {
  const h = await setup(t, (p) =>
    reply(p.toString('latin1').includes('first') ? resultSet(true, [{ name: 'a' }], [textRow('first')]) : resultSet(true, [{ name: 'b' }], [textRow('third')])),
  );
  const got = await h.send([encode(query("SELECT 'first' AS a"), 0), encode(query('DROP TABLE t'), 0), encode(query("SELECT 'third' AS b"), 0)], finals(3));
  const texts = got.map((p) => p.payload.toString('latin1'));
  const i1 = texts.findIndex((x) => x.includes('first') && !x.includes('SELECT'));
  const i2 = texts.findIndex((x) => x.includes('denied by rule "no-drop"'));
  const i3 = texts.findIndex((x) => x.includes('third'));
  t.ok(i1 >= 0 && i2 > i1 && i3 > i2, `in order: ${i1} ${i2} ${i3}`);
  t.equal(h.upstreamSeen.length, 2, 'the refused statement never reached the upstream');
  t.same(
    h.audit
      .units()
      .map((e) => e.decision?.action)
      .sort(),
    ['allow', 'allow', 'deny'],
  );
});

t.test('an ERR packet is masked for a masked caller', async (t) => {
  const h = await setup(t, () => reply([err(1062, '23000', `Duplicate entry '${CARD}' for key 'card_number'`)]));
  const got = await h.send([encode(query("INSERT INTO cards (card_number) VALUES ('x')"), 0)], finals(1));
  t.match(errors(got).join(), /Duplicate entry '\[masked\]'/);
  t.notMatch(JSON.stringify(h.audit.events), CARD);
});
