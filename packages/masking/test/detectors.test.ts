import t from 'tap';
import { detectors, ibanValid, luhnValid, ssnValid, type DetectorName } from '../src/index.js';

const found = (name: DetectorName, text: string) => detectors[name].find(text).map((s) => text.slice(s.start, s.end));

t.test('Luhn', async (t) => {
  for (const ok of ['4111111111111111', '4111 1111 1111 1111', '5500-0000-0000-0004', '378282246310005', '6011111111111117', '4222222222222']) {
    t.ok(luhnValid(ok), ok);
  }
  for (const bad of ['4111111111111112', '5500-0000-0000-0005', '1234567812345678', '0']) t.notOk(luhnValid(bad), bad);
});

t.test('credit_card detector', async (t) => {
  t.same(found('credit_card', 'card 4111 1111 1111 1111 exp 12/29'), ['4111 1111 1111 1111']);
  t.same(found('credit_card', 'a=5500-0000-0000-0004;b=378282246310005'), ['5500-0000-0000-0004', '378282246310005']);
  t.same(found('credit_card', 'order 4111111111111112 shipped'), [], 'Luhn failure');
  t.same(found('credit_card', 'id 12345678901234567890123'), [], 'longer digit run is not a card');
  t.same(found('credit_card', '4111  1111 1111 1111'), [], 'double space breaks the number');
  t.same(found('credit_card', 'short 4111 1111'), []);
  t.same(found('credit_card', 'no digits here at all'), []);
});

t.test('IBAN', async (t) => {
  for (const ok of ['GB82WEST12345698765432', 'DE89370400440532013000', 'GB82 WEST 1234 5698 7654 32', 'FR1420041010050500013M02606', 'NL91ABNA0417164300']) {
    t.ok(ibanValid(ok), ok);
  }
  for (const bad of ['GB82WEST12345698765433', 'DE88370400440532013000', 'DE8937040044053201300', 'gb82west12345698765432', 'XX']) {
    t.notOk(ibanValid(bad), bad);
  }
  t.same(found('iban', 'pay to GB82WEST12345698765432 today'), ['GB82WEST12345698765432']);
  t.same(found('iban', 'IBAN: GB82 WEST 1234 5698 7654 32 BIC WESTGB2L'), ['GB82 WEST 1234 5698 7654 32'], 'spaced, followed by words');
  t.same(found('iban', 'DE89370400440532013000,DE89370400440532013001'), ['DE89370400440532013000'], 'bad check digits skipped');
});

t.test('SSN', async (t) => {
  for (const ok of ['123-45-6789', '078051121', '899-99-9999']) t.ok(ssnValid(ok), ok);
  for (const bad of ['000-12-3456', '666-12-3456', '900-12-3456', '999-99-9999', '123-00-4567', '123-45-0000', '12-345-6789', '12345678']) {
    t.notOk(ssnValid(bad), bad);
  }
  t.same(found('ssn', 'ssn 123-45-6789, alt 078051121'), ['123-45-6789', '078051121']);
  t.same(found('ssn', 'phone 555-123-4567 and 666-12-3456'), []);
  t.same(found('ssn', 'order 1234567890'), [], '10 digits are not an SSN');
});

t.test('email', async (t) => {
  t.same(found('email', 'mail jane.doe+x@mail.example.com, or bob@ex.org.'), ['jane.doe+x@mail.example.com', 'bob@ex.org']);
  t.same(found('email', 'user@localhost and @handle and a@b'), []);
  const hostile = 'a'.repeat(50_000) + '@';
  t.same(found('email', hostile), [], 'long local part without domain');
});

t.test('jwt and cloud keys', async (t) => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2J5dGVz-_x';
  t.same(found('jwt', `Authorization: Bearer ${jwt}`), [jwt]);
  t.same(found('jwt', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'), ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'], 'alg none, empty signature');
  t.same(found('jwt', 'version 1.2.3 and eyJ alone'), []);
  t.same(found('aws_key', 'key=AKIAIOSFODNN7EXAMPLE;temp=ASIAY34FZKBOKMUTVV7A'), ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A']);
  t.same(found('aws_key', 'AKIAIOSFODNN7EXAMPLEX'), [], 'too long');
  const gcp = 'AIzaSyA-1234567890abcdefghijklmnopqrstu';
  t.equal(gcp.length, 39);
  t.same(found('gcp_key', `key=${gcp}&x=1`), [gcp]);
  t.same(found('gcp_key', 'AIzaShort'), []);
  const ghp = 'ghp_' + 'a1B2c3D4e5'.repeat(3) + 'F6g7H8';
  t.equal(ghp.length, 40);
  const pat = 'github_pat_11ABCDEFG0123456789abc_' + 'x'.repeat(59);
  t.same(found('github_token', `token ${ghp} and ${pat}`), [ghp, pat]);
  t.same(found('github_token', 'ghx_' + 'a'.repeat(36)), []);
  t.same(found('github_token', 'ghp_tooShort'), []);
});
