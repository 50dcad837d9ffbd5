import t from 'tap';
import type { Identity, MaskingRuleConfig } from '@gatehouse/core';
import { compileMasking } from '../src/index.js';

const who = (groups: string[], subject = 'svc:app'): Identity => ({ subject, issuer: 'https://idp', groups, claims: {} });
const key = Buffer.from('0123456789abcdef0123456789abcdef');

function engine(rules: MaskingRuleConfig[]) {
  const r = compileMasking(rules, { hashKey: key });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

const designRules: MaskingRuleConfig[] = [
  { columns: ['card_number', 'SSN'], with: 'last4' },
  { detectors: ['credit_card', 'email'], with: 'redact' },
];

t.test('planColumns: column rules first, then detectors, else null', async (t) => {
  const m = engine(designRules).forIdentity(who(['payments']));
  t.equal(m.active, true);
  const plan = m.planColumns(['id', 'Card_Number', 'ssn', 'note']);
  t.equal(plan.any, true);
  const [id, card, ssn, note] = plan.columns;
  t.ok(id && note, 'detector masks on other columns');
  t.equal(card!('4111 1111 1111 1111'), '**** **** **** 1111');
  t.equal(ssn!('123-45-6789'), '***-**-6789');
  const clean = 'nothing to see';
  t.equal(note!(clean), clean, 'unchanged value is the same string');
  t.equal(note!('paid with 5500-0000-0000-0004 by jane@example.com'), 'paid with [REDACTED] by [REDACTED]');
  t.equal(id!('42'), '42');

  const columnsOnly = engine([{ columns: ['secret_*'], with: 'redact' }]).forIdentity(who([]));
  const p2 = columnsOnly.planColumns(['id', 'SECRET_token', 'secretive']);
  t.same(
    p2.columns.map((c) => c !== null),
    [false, true, false],
  );
  t.equal(p2.columns[1]!('abc'), '[REDACTED]');
});

t.test('strategies', async (t) => {
  const m = engine([
    { columns: ['r'], with: 'redact' },
    { columns: ['l'], with: 'last4' },
    { columns: ['e'], with: 'email' },
    { columns: ['h'], with: 'hash' },
    { columns: ['n'], with: 'null' },
  ]).forIdentity(who([]));
  const [r, l, e, h, n] = m.planColumns(['r', 'l', 'e', 'h', 'n']).columns;
  t.equal(r!('x'), '[REDACTED]');
  t.equal(l!('GB82 WEST 1234 5698 7654 32'), '**** **** **** **** **54 32');
  t.equal(l!('1234'), '****', 'short values are masked entirely');
  t.equal(e!('jane.doe@example.com'), 'j***@example.com');
  t.equal(e!('not an address'), '[REDACTED]');
  const h1 = h!('4111111111111111');
  t.match(h1, /^sha256:[0-9a-f]{16}$/);
  t.equal(h!('4111111111111111'), h1, 'deterministic: joinable');
  t.not(h!('4111111111111112'), h1);
  const other = compileMasking([{ columns: ['h'], with: 'hash' }], { hashKey: Buffer.alloc(32, 7) });
  t.ok(other.ok);
  if (other.ok) t.not(other.value.forIdentity(who([])).planColumns(['h']).columns[0]!('4111111111111111'), h1, 'keyed');
  t.equal(n!('anything'), null);
});

t.test('detectors in free text; null becomes [REDACTED] in text, NULL in a column', async (t) => {
  const m = engine([
    { detectors: ['ssn'], with: 'null' },
    { detectors: ['email', 'jwt'], with: 'email' },
    { detectors: ['aws_key', 'github_token'], with: 'last4' },
  ]).forIdentity(who([]));
  t.equal(m.maskText('ssn 123-45-6789 ok'), 'ssn [REDACTED] ok');
  t.equal(m.maskText('to jane@example.com'), 'to j***@example.com');
  t.equal(m.maskText('AKIAIOSFODNN7EXAMPLE'), '****************MPLE');
  t.equal(m.planColumns(['c']).columns[0]!('ssn 123-45-6789'), null);
  const text = 'no secrets';
  t.equal(m.maskText(text), text);
});

t.test('JSON paths: nested arrays, indexes, descendants, quoted names', async (t) => {
  const m = engine([
    { json: ['$.card.number', '$..ssn'], with: 'last4' },
    { json: ["$.orders[*].items[*]['billing-email']", '$.tags[0]'], with: 'email' },
    { json: ['$.secret'], with: 'null' },
    { json: ['$.blob'], with: 'redact' },
  ]).forIdentity(who([]));
  const doc = {
    card: { number: '4111111111111111', brand: 'visa' },
    customer: { ssn: '123-45-6789', family: [{ ssn: '078-05-1121' }] },
    orders: [{ items: [{ 'billing-email': 'ann@example.com', sku: 'x' }, { sku: 'y' }] }],
    tags: ['a@b.io', 'keep@b.io'],
    secret: 's3cret',
    blob: { deep: [1, 2] },
    untouched: { a: 1 },
  };
  const before = JSON.stringify(doc);
  const r = m.maskJson(doc);
  t.equal(r.changed, true);
  t.same(r.value, {
    card: { number: '************1111', brand: 'visa' },
    customer: { ssn: '***-**-6789', family: [{ ssn: '***-**-1121' }] },
    orders: [{ items: [{ 'billing-email': 'a***@example.com', sku: 'x' }, { sku: 'y' }] }],
    tags: ['a***@b.io', 'keep@b.io'],
    secret: null,
    blob: '[REDACTED]',
    untouched: { a: 1 },
  });
  t.equal(JSON.stringify(doc), before, 'input not mutated');
  t.equal((r.value as typeof doc).untouched, doc.untouched, 'untouched subtrees shared');
  const same = { card: { brand: 'visa' } };
  const r2 = m.maskJson(same);
  t.equal(r2.changed, false);
  t.equal(r2.value, same);
});

t.test('JSON detectors on string leaves, and the first rule naming a node wins', async (t) => {
  const m = engine([
    { json: ['$.card'], with: 'last4' },
    { json: ['$.card'], with: 'redact' },
    { detectors: ['credit_card'], with: 'redact' },
  ]).forIdentity(who([]));
  const r = m.maskJson({ card: '4111111111111111', list: [{ note: 'paid 4111 1111 1111 1111' }], n: 4111111111111111, id: 42 });
  t.same(r.value, { card: '************1111', list: [{ note: 'paid [REDACTED]' }], n: '[REDACTED]', id: 42 }, 'a card held as a JSON number is masked too');
  const keyed = m.maskJson(JSON.parse('{"4111111111111111": {"ok": true}, "big": 12345678901234567890, "small": 12345}'));
  t.same(keyed.value, { '[REDACTED]': { ok: true }, big: '[REDACTED]', small: 12345 }, 'a card used as a key is masked; an integer past 2^53 cannot be judged and is redacted');
});

t.test('deep JSON is masked whole rather than overflowing', async (t) => {
  const m = engine([{ detectors: ['email'], with: 'redact' }]).forIdentity(who([]));
  let deep: unknown = 'x@example.com';
  for (let i = 0; i < 1000; i++) deep = [deep];
  const r = m.maskJson(deep);
  t.equal(r.changed, true);
  t.notMatch(JSON.stringify(r.value), /example\.com/);
});

t.test('applies_to and exempt by group and subject; maskers are cached', async (t) => {
  const e = engine([
    { columns: ['ssn'], with: 'redact', exempt: { groups: ['compliance'] } },
    { columns: ['salary'], with: 'null', applies_to: { groups: ['contractors'], subjects: ['svc:report'] } },
  ]);
  const plain = e.forIdentity(who(['payments']));
  t.same(
    plain.planColumns(['ssn', 'salary']).columns.map((c) => c !== null),
    [true, false],
  );
  const compliance = e.forIdentity(who(['compliance']));
  t.equal(compliance.active, false, 'no rule applies');
  t.equal(compliance.planColumns(['ssn']).any, false);
  t.equal(compliance.maskText('123-45-6789'), '123-45-6789');
  const contractor = e.forIdentity(who(['contractors']));
  t.same(
    contractor.planColumns(['ssn', 'salary']).columns.map((c) => c?.('1')),
    ['[REDACTED]', null],
  );
  const report = e.forIdentity(who(['compliance'], 'svc:report'));
  t.same(
    report.planColumns(['ssn', 'salary']).columns.map((c) => c !== null),
    [false, true],
  );
  t.equal(e.forIdentity(who(['payments', 'other'], 'svc:b')), plain, 'same applicable rules → same Masker');
});

t.test('compile errors', async (t) => {
  const bad = (rules: MaskingRuleConfig[], hashKey?: Buffer) => {
    const r = compileMasking(rules, { hashKey });
    t.equal(r.ok, false);
    return r.ok ? '' : r.error.message;
  };
  t.match(bad([{ columns: ['x'], with: 'hash' }]), /rule #1: with: hash needs a gateway hash key/);
  t.match(bad([{ columns: ['x'], with: 'scramble' as never }]), /unknown strategy/);
  t.match(bad([{ detectors: ['passport'], with: 'redact' }]), /unknown detector "passport"/);
  t.match(
    bad([
      { columns: ['a'], with: 'redact' },
      { json: ['a.b'], with: 'redact' },
    ]),
    /rule #2: JSON path "a.b" must start with \$/,
  );
  t.match(bad([{ json: ['$.a[?(@.x)]'], with: 'redact' }]), /unsupported selector/);
  t.match(bad([{ json: ['$'], with: 'redact' }]), /whole document/);
  t.match(bad([{ with: 'redact' }]), /needs columns, json or detectors/);
  t.ok(compileMasking([]).ok);
  const none = compileMasking([]);
  if (none.ok) t.equal(none.value.forIdentity(who([])).active, false);
});

t.test('column rules by origin: column, table.column, schema.table.column; aliases never matter', async (t) => {
  const r = compileMasking([{ columns: ['card_number', 'customers.ssn', 'hr.staff.salary'], with: 'redact' }]);
  if (!r.ok) throw new Error(r.error.message);
  const m = r.value.forIdentity(who([]));
  const o = (schema: string, table: string, column: string) => ({ schema, table, column });
  const plan = m.planColumns(
    ['x', 'y', 'z', 'w', 'ssn', 'card_number'],
    [o('public', 'cards', 'card_number'), o('public', 'customers', 'ssn'), o('hr', 'staff', 'salary'), o('public', 'staff', 'salary'), o('public', 'employees', 'ssn'), null],
  );
  t.same(
    plan.columns.map((c) => c !== null),
    [true, true, true, false, false, true],
    'aliased origins masked; a table- or schema-scoped rule does not mask another table; an unknown origin falls back to the label for one-part rules',
  );
  t.equal(m.maskedColumn?.('CARD_NUMBER'), 'card_number');
  t.equal(m.maskedColumn?.('ssn'), 'customers.ssn', 'a bare name that a scoped rule could mask');
  t.equal(m.maskedColumn?.('holder'), null);
  t.equal(m.maskedOrigin?.(o('public', 'customers', 'ssn')), 'customers.ssn');
  t.equal(m.maskedOrigin?.(o('public', 'employees', 'ssn')), null);
  const bad = compileMasking([{ columns: ['a.b.c.d'], with: 'redact' }]);
  t.notOk(bad.ok, 'four-part names are refused at load');
  const empty = compileMasking([{ columns: ['a..b'], with: 'redact' }]);
  t.notOk(empty.ok, 'an empty part is refused at load');
});
