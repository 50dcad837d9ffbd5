/**
 * The upstream SCRAM-SHA-256 client against RFC 7677 §3's published exchange (user "user",
 * password "pencil", fixed nonces), plus the refusals that keep a fake server from
 * skipping its proof, and SASLprep as PostgreSQL applies it.
 */
import t from 'tap';
import { saslPrep, ScramClient } from '../src/scram.js';

const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const CLIENT_FIRST = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

t.test('RFC 7677 test vector: exact client messages, server signature accepted', async (t) => {
  const c = new ScramClient('pencil', new Map(), { user: 'user', nonce: CLIENT_NONCE });
  t.equal(c.clientFirst().toString('utf8'), CLIENT_FIRST);
  const final = await c.clientFinal(SERVER_FIRST);
  t.ok(final.ok);
  if (final.ok) t.equal(final.value.toString('utf8'), CLIENT_FINAL);
  t.equal(c.verified, false, 'not verified before the server-final-message');
  t.ok(c.verifyServerFinal(SERVER_FINAL).ok);
  t.equal(c.verified, true);
});

t.test('the salted password cache gives the same proof', async (t) => {
  const cache = new Map<string, Buffer>();
  for (let i = 0; i < 2; i++) {
    const c = new ScramClient('pencil', cache, { user: 'user', nonce: CLIENT_NONCE });
    const final = await c.clientFinal(SERVER_FIRST);
    t.equal(final.ok && final.value.toString('utf8'), CLIENT_FINAL, `round ${i}`);
  }
  t.equal(cache.size, 1);
});

t.test('a wrong password or a forged server signature is refused', async (t) => {
  const wrong = new ScramClient('pencil2', new Map(), { user: 'user', nonce: CLIENT_NONCE });
  const f = await wrong.clientFinal(SERVER_FIRST);
  t.ok(f.ok);
  if (f.ok) t.not(f.value.toString('utf8'), CLIENT_FINAL);
  const v = wrong.verifyServerFinal(SERVER_FINAL);
  t.equal(v.ok, false);
  if (!v.ok) t.match(v.error.message, /signature mismatch/);
  t.equal(wrong.verified, false);

  const right = new ScramClient('pencil', new Map(), { user: 'user', nonce: CLIENT_NONCE });
  t.equal(right.verifyServerFinal(SERVER_FINAL).ok, false, 'no signature accepted before the exchange');
  t.ok((await right.clientFinal(SERVER_FIRST)).ok);
  t.equal((await right.clientFinal(SERVER_FIRST)).ok, false, 'a second server-first-message is refused');
  const e = right.verifyServerFinal('e=other-error');
  t.equal(e.ok, false);
  t.equal(right.verified, false);
});

t.test('server-first-message checks', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /nonce/],
    [`r=${CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /nonce/],
    [`r=${CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`, /iteration/],
    [`r=${CLIENT_NONCE}xyz,i=4096`, /salt/],
    [`m=ext,r=${CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /extension/],
  ];
  for (const [msg, why] of cases) {
    const c = new ScramClient('pencil', new Map(), { nonce: CLIENT_NONCE });
    const r = await c.clientFinal(msg);
    t.equal(r.ok, false, msg);
    if (!r.ok) t.match(r.error.message, why);
  }
});

t.test('random nonces differ and the default user is empty (as libpq sends)', async (t) => {
  const a = new ScramClient('x', new Map()).clientFirst().toString();
  const b = new ScramClient('x', new Map()).clientFirst().toString();
  t.match(a, /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
  t.not(a, b);
  t.equal(new ScramClient('x', new Map(), { user: 'a=b,c', nonce: 'n' }).clientFirst().toString(), 'n,,n=a=3Db=2Cc,r=n');
});

t.test('SASLprep as PostgreSQL applies it', async (t) => {
  t.equal(saslPrep('pencil'), 'pencil');
  t.equal(saslPrep('tab\there'), 'tab\there', 'ASCII, even with controls, is untouched');
  t.equal(saslPrep('I\u00ADX'), 'IX', 'soft hyphen is mapped to nothing');
  t.equal(saslPrep('a\u00A0b'), 'a b', 'non-ASCII space becomes a space');
  t.equal(saslPrep('\u2168'), 'IX', 'NFKC');
  t.equal(saslPrep('\u00AA'), 'a', 'NFKC');
  t.equal(saslPrep('\u00AD'), '\u00AD', 'empty after mapping: the raw password is used');
  t.equal(saslPrep('\u2168\u0007'), '\u2168\u0007', 'prohibited character: the raw password is used');
  t.equal(saslPrep('\u2168\uE000'), '\u2168\uE000', 'private use is prohibited');
});
