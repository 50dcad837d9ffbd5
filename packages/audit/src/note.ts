/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and the
 * tlog-checkpoint body (https://c2sp.org/tlog-checkpoint) they carry.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { err, ok, type Result } from '@gatehouse/core';
import { sha256 } from './hashing.js';

const ED25519_ALG = 0x01;
const SIG_PREFIX = '\u2014 ';
/** Notes are small; anything larger is refused before parsing. */
const MAX_NOTE_BYTES = 64 * 1024;

export interface NoteKey {
  name: string;
  /** 4-byte key id. */
  id: Buffer;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** Key names: non-empty, no whitespace, no '+' (signed-note §Verifier keys). */
export function validKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

/** First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). */
export function keyId(name: string, publicKey: Buffer): Buffer {
  return sha256(Buffer.concat([Buffer.from(name + '\n', 'utf8'), Buffer.from([ED25519_ALG]), publicKey])).subarray(0, 4);
}

/** `<name>+<hex key id>+<base64(0x01 || public key)>`. */
export function verifierKeyString(name: string, publicKey: Buffer): string {
  return `${name}+${keyId(name, publicKey).toString('hex')}+${Buffer.concat([Buffer.from([ED25519_ALG]), publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): Result<NoteKey> {
  // The base64 key may itself contain '+': split on the first two only.
  const s = text.trim();
  const a = s.indexOf('+');
  const b = a < 0 ? -1 : s.indexOf('+', a + 1);
  if (b < 0) return err('audit.bad_key', 'verifier key must be <name>+<hex id>+<base64 key>');
  const name = s.slice(0, a);
  const idHex = s.slice(a + 1, b);
  const keyB64 = s.slice(b + 1);
  if (!validKeyName(name) || !/^[0-9a-f]{8}$/.test(idHex)) return err('audit.bad_key', 'verifier key has a bad name or id');
  const raw = Buffer.from(keyB64, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519_ALG) return err('audit.bad_key', 'verifier key is not an Ed25519 key');
  const publicKey = raw.subarray(1);
  const id = keyId(name, publicKey);
  if (id.toString('hex') !== idHex) return err('audit.bad_key', 'verifier key id does not match its key');
  return ok({ name, id, publicKey });
}

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** Signs `body` (which must end in a newline) into a complete note. */
export function signNote(body: string, name: string, privateKey: KeyObject, publicKey: Buffer): string {
  const sig = sign(null, Buffer.from(body, 'utf8'), privateKey);
  return `${body}\n${SIG_PREFIX}${name} ${Buffer.concat([keyId(name, publicKey), sig]).toString('base64')}\n`;
}

/** Verifies a note against one key; returns its body text. */
export function verifyNote(note: string, key: NoteKey): Result<string> {
  if (typeof note !== 'string' || Buffer.byteLength(note) > MAX_NOTE_BYTES) return err('audit.bad_note', 'note missing or too large');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return err('audit.bad_note', 'note has no signature block');
  const body = note.slice(0, split + 1);
  if (/[\u0000-\u0009\u000b-\u001f]/u.test(body)) return err('audit.bad_note', 'note body holds control characters');
  const sigLines = note.slice(split + 2).split('\n');
  if (sigLines.pop() !== '') return err('audit.bad_note', 'note does not end in a newline');
  let sawKey = false;
  for (const line of sigLines) {
    if (!line.startsWith(SIG_PREFIX)) return err('audit.bad_note', 'malformed signature line');
    const [name, b64, extra] = line.slice(SIG_PREFIX.length).split(' ');
    if (extra !== undefined || !b64) return err('audit.bad_note', 'malformed signature line');
    if (name !== key.name) continue;
    const raw = Buffer.from(b64, 'base64');
    if (raw.length !== 4 + 64 || !raw.subarray(0, 4).equals(key.id)) continue;
    sawKey = true;
    if (verify(null, Buffer.from(body, 'utf8'), publicKeyObject(key.publicKey), raw.subarray(4))) return ok(body);
  }
  return err('audit.bad_signature', sawKey ? 'checkpoint signature does not verify' : `no signature by key ${key.name}`);
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  /** Signing time from our extension line, when present. */
  time?: string;
}

const TIME_PREFIX = 'time ';

/** `<origin>\n<size>\n<base64 root>\ntime <RFC 3339>\n` */
export function checkpointBody(origin: string, size: number, root: Buffer, time: string): string {
  return `${origin}\n${size}\n${root.toString('base64')}\n${TIME_PREFIX}${time}\n`;
}

export function parseCheckpointBody(body: string): Result<Checkpoint> {
  const lines = body.split('\n');
  if (lines.pop() !== '' || lines.length < 3) return err('audit.bad_checkpoint', 'checkpoint body needs origin, size and root lines');
  const [origin, sizeText, rootText, ...ext] = lines;
  if (!origin) return err('audit.bad_checkpoint', 'empty origin');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) return err('audit.bad_checkpoint', 'bad tree size');
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) return err('audit.bad_checkpoint', 'bad root hash');
  if (ext.some((l) => l === '')) return err('audit.bad_checkpoint', 'empty extension line');
  const t = ext.find((l) => l.startsWith(TIME_PREFIX));
  return ok({ origin, size: Number(sizeText), root, ...(t ? { time: t.slice(TIME_PREFIX.length) } : {}) });
}

/** Signature check, then body parse: the one way callers should read a checkpoint. */
export function openCheckpoint(note: string, key: NoteKey): Result<Checkpoint> {
  const body = verifyNote(note, key);
  return body.ok ? parseCheckpointBody(body.value) : body;
}
