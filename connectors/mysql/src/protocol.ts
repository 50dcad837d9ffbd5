/**
 * MySQL client/server protocol constants and the connection-phase packets: the server
 * greeting (HandshakeV10), SSLRequest, HandshakeResponse41, auth switch and auth-more-data,
 * and the password scrambles of mysql_native_password and caching_sha2_password.
 */
import { createHash, publicEncrypt, privateDecrypt, constants as cryptoConstants } from 'node:crypto';
import { lenencInt, lenencString, Reader, u16, u32 } from './packet.js';

export const CAP = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  NO_SCHEMA: 16,
  COMPRESS: 32,
  ODBC: 64,
  LOCAL_FILES: 128,
  IGNORE_SPACE: 256,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  IGNORE_SIGPIPE: 4096,
  TRANSACTIONS: 8192,
  RESERVED: 16384,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  OPTIONAL_RESULTSET_METADATA: 1 << 25,
  ZSTD_COMPRESSION: 1 << 26,
  QUERY_ATTRIBUTES: 1 << 27,
  MULTI_FACTOR_AUTH: 1 << 28,
  CAPABILITY_EXTENSION: 1 << 29,
  SSL_VERIFY_SERVER_CERT: 1 << 30,
  REMEMBER_OPTIONS: 2 ** 31,
} as const;

/**
 * What the gateway offers callers, and so the most it asks of the upstream. Left out on
 * purpose: compression (zlib/zstd), optional result-set metadata (every result set carries
 * its column definitions: masking needs them), query attributes (MySQL 8 only), multi-factor
 * auth. CLIENT_LONG_PASSWORD (= CLIENT_MYSQL for MariaDB) is set, so MariaDB clients and
 * servers negotiate none of MariaDB's extended capabilities (metadata caching, bulk execute,
 * progress reports).
 */
export const GATEWAY_CAPABILITIES =
  CAP.LONG_PASSWORD |
  CAP.FOUND_ROWS |
  CAP.LONG_FLAG |
  CAP.CONNECT_WITH_DB |
  CAP.ODBC |
  CAP.LOCAL_FILES |
  CAP.IGNORE_SPACE |
  CAP.PROTOCOL_41 |
  CAP.INTERACTIVE |
  CAP.SSL |
  CAP.IGNORE_SIGPIPE |
  CAP.TRANSACTIONS |
  CAP.RESERVED |
  CAP.SECURE_CONNECTION |
  CAP.MULTI_STATEMENTS |
  CAP.MULTI_RESULTS |
  CAP.PS_MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  CAP.SESSION_TRACK |
  CAP.DEPRECATE_EOF;

/** Capabilities every caller and upstream must have (the 4.1 protocol with plugin authentication). */
export const REQUIRED_CAPABILITIES = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION;

export const STATUS = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
  LAST_ROW_SENT: 0x0080,
  NO_BACKSLASH_ESCAPES: 0x0200,
  PS_OUT_PARAMS: 0x1000,
} as const;

export const COM = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  RESET_CONNECTION: 0x1f,
} as const;

/** utf8mb4_general_ci: what the gateway announces, and asks for upstream unless the caller says otherwise. */
export const UTF8MB4_GENERAL_CI = 45;

export const NATIVE = 'mysql_native_password';
export const CACHING_SHA2 = 'caching_sha2_password';
export const CLEAR = 'mysql_clear_password';
export const SHA256_PASSWORD = 'sha256_password';

// ---------------------------------------------------------------------------------------
// Server greeting

export interface Greeting {
  protocol: number;
  serverVersion: string;
  connectionId: number;
  /** 20 bytes (without the trailing NUL). */
  scramble: Buffer;
  capabilities: number;
  charset: number;
  status: number;
  plugin: string;
}

export function buildGreeting(g: Omit<Greeting, 'protocol'>): Buffer {
  const caps = g.capabilities >>> 0;
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from(g.serverVersion + '\0', 'utf8'),
    u32(g.connectionId),
    g.scramble.subarray(0, 8),
    Buffer.from([0]),
    u16(caps & 0xffff),
    Buffer.from([g.charset]),
    u16(g.status),
    u16(caps >>> 16),
    Buffer.from([g.scramble.length + 1]),
    Buffer.alloc(10),
    g.scramble.subarray(8),
    Buffer.from([0]),
    Buffer.from(g.plugin + '\0', 'utf8'),
  ]);
}

export function readGreeting(p: Buffer): Greeting {
  const r = new Reader(p);
  const protocol = r.u8();
  if (protocol !== 10) throw new RangeError(`unsupported protocol version ${protocol}`);
  const serverVersion = r.cstring();
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.u8();
  let capabilities = r.u16();
  let charset = 0;
  let status = 0;
  let scramble = part1;
  let plugin = NATIVE;
  if (r.left > 0) {
    charset = r.u8();
    status = r.u16();
    capabilities = (capabilities | (r.u16() << 16)) >>> 0;
    const authLen = r.u8();
    r.bytes(10);
    if (capabilities & CAP.SECURE_CONNECTION) {
      const n = Math.max(13, authLen - 8);
      const part2 = r.bytes(Math.min(n, r.left));
      // The second part ends with a NUL that is not part of the scramble.
      scramble = Buffer.concat([part1, part2[part2.length - 1] === 0 ? part2.subarray(0, part2.length - 1) : part2]);
    }
    if (capabilities & CAP.PLUGIN_AUTH && r.left > 0) plugin = r.cstringOrRest();
  }
  return { protocol, serverVersion, connectionId, scramble, capabilities, charset, status, plugin };
}

// ---------------------------------------------------------------------------------------
// Client handshake response

export interface HandshakeResponse {
  capabilities: number;
  maxPacket: number;
  charset: number;
  user: string;
  authData: Buffer;
  database: string | null;
  plugin: string | null;
  attributes: Map<string, string>;
}

/** True for a 32-byte SSLRequest (the caller asks for TLS before saying anything else). */
export function isSslRequest(p: Buffer): boolean {
  return p.length === 32 && (p.readUInt32LE(0) & CAP.SSL) !== 0;
}

export function readHandshakeResponse(p: Buffer): HandshakeResponse {
  const r = new Reader(p);
  const capabilities = r.u32();
  if (!(capabilities & CAP.PROTOCOL_41)) throw new RangeError('pre-4.1 handshake response');
  const maxPacket = r.u32();
  const charset = r.u8();
  r.bytes(23);
  const user = r.cstring();
  let authData: Buffer;
  if (capabilities & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) authData = r.lenencBytes();
  else if (capabilities & CAP.SECURE_CONNECTION) authData = r.bytes(r.u8());
  else {
    const end = p.indexOf(0, r.pos);
    authData = r.bytes((end < 0 ? p.length : end) - r.pos);
    if (r.left > 0) r.u8();
  }
  let database: string | null = null;
  if (capabilities & CAP.CONNECT_WITH_DB && r.left > 0) database = r.cstringOrRest();
  let plugin: string | null = null;
  if (capabilities & CAP.PLUGIN_AUTH && r.left > 0) plugin = r.cstringOrRest();
  const attributes = new Map<string, string>();
  if (capabilities & CAP.CONNECT_ATTRS && r.left > 0) {
    const len = r.lenencInt();
    const end = r.pos + len;
    if (end > p.length) throw new RangeError('connection attributes too long');
    while (r.pos < end) {
      const k = r.lenencString();
      const v = r.lenencString();
      if (attributes.size < 64) attributes.set(k.slice(0, 64), v.slice(0, 256));
    }
  }
  return { capabilities, maxPacket, charset, user, authData: Buffer.from(authData), database, plugin, attributes };
}

export function buildSslRequest(capabilities: number, charset: number): Buffer {
  return Buffer.concat([u32(capabilities | CAP.SSL), u32(MAX_ALLOWED_PACKET), Buffer.from([charset]), Buffer.alloc(23)]);
}

/** The max_allowed_packet the gateway announces upstream (the server's own limit still applies). */
export const MAX_ALLOWED_PACKET = 1 << 30;

export function buildHandshakeResponse(o: {
  capabilities: number;
  charset: number;
  user: string;
  authData: Buffer;
  database: string | null;
  plugin: string;
  attributes: Record<string, string>;
}): Buffer {
  let caps = o.capabilities;
  if (o.database) caps |= CAP.CONNECT_WITH_DB;
  else caps &= ~CAP.CONNECT_WITH_DB;
  const attrs = Object.entries(o.attributes).map(([k, v]) => Buffer.concat([lenencString(k), lenencString(v)]));
  const attrBytes = Buffer.concat(attrs);
  return Buffer.concat([
    u32(caps),
    u32(MAX_ALLOWED_PACKET),
    Buffer.from([o.charset]),
    Buffer.alloc(23),
    Buffer.from(o.user + '\0', 'utf8'),
    caps & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA ? lenencInt(o.authData.length) : Buffer.from([o.authData.length]),
    o.authData,
    ...(o.database ? [Buffer.from(o.database + '\0', 'utf8')] : []),
    ...(caps & CAP.PLUGIN_AUTH ? [Buffer.from(o.plugin + '\0', 'utf8')] : []),
    ...(caps & CAP.CONNECT_ATTRS ? [lenencInt(attrBytes.length), attrBytes] : []),
  ]);
}

export function authSwitchRequest(plugin: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), Buffer.from(plugin + '\0', 'utf8'), data]);
}

export function readAuthSwitch(p: Buffer): { plugin: string; data: Buffer } {
  const r = new Reader(p, 1);
  if (r.left === 0) return { plugin: NATIVE, data: Buffer.alloc(0) }; // old-style switch request
  const plugin = r.cstring();
  let data = r.rest();
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { plugin, data: Buffer.from(data) };
}

// ---------------------------------------------------------------------------------------
// Scrambles

const sha1 = (...b: Buffer[]) => {
  const h = createHash('sha1');
  for (const x of b) h.update(x);
  return h.digest();
};
const sha256 = (...b: Buffer[]) => {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest();
};

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i % b.length];
  return out;
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
export function nativeScramble(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha1(Buffer.from(password, 'utf8'));
  const p2 = sha1(p1);
  return xor(p1, sha1(scramble.subarray(0, 20), p2));
}

/** caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble). */
export function sha2Scramble(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, 'utf8'));
  const p2 = sha256(p1);
  return xor(p1, sha256(p2, scramble.subarray(0, 20)));
}

/** caching_sha2_password / sha256_password over a clear connection: RSA-OAEP of (pw + NUL) XOR scramble. */
export function rsaEncryptPassword(password: string, scramble: Buffer, publicKeyPem: Buffer): Buffer {
  const clear = xor(Buffer.from(password + '\0', 'utf8'), scramble.subarray(0, 20));
  return publicEncrypt({ key: publicKeyPem, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING }, clear);
}

/** The other side of `rsaEncryptPassword`: the password (without its NUL), or null. */
export function rsaDecryptPassword(data: Buffer, scramble: Buffer, privateKeyPem: string | Buffer): string | null {
  try {
    const clear = xor(privateDecrypt({ key: privateKeyPem, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING }, data), scramble.subarray(0, 20));
    const end = clear.indexOf(0);
    return clear.toString('utf8', 0, end < 0 ? clear.length : end);
  } catch {
    return null;
  }
}

/** The auth response for `plugin`'s first round, or null for a plugin the gateway cannot speak upstream. */
export function firstAuthResponse(plugin: string, password: string, scramble: Buffer, tls: boolean): Buffer | null {
  switch (plugin) {
    case NATIVE:
      return nativeScramble(password, scramble);
    case CACHING_SHA2:
      return sha2Scramble(password, scramble);
    case CLEAR:
      return Buffer.from(password + '\0', 'utf8');
    case SHA256_PASSWORD:
      // Over TLS the password goes in clear; otherwise ask for the server's public key first.
      return password === '' ? Buffer.from([0]) : tls ? Buffer.from(password + '\0', 'utf8') : Buffer.from([1]);
    default:
      return null;
  }
}
