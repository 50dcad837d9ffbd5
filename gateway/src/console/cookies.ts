/**
 * The console's two cookies. Both HttpOnly; `Secure` unless the admin server is plain HTTP
 * on loopback (a browser would drop a Secure cookie over http://). With Secure the names
 * carry the `__Host-` prefix, so no sibling host or path can plant or shadow them.
 *
 * - session: SameSite=Strict — never sent on a request another site starts (the CSRF
 *   token and the Origin check are the second and third lines behind it).
 * - login (state, nonce and PKCE verifier of one sign-in, 10 minutes): SameSite=Lax — the
 *   IdP's redirect back to /ui/callback is a top-level navigation started by another site,
 *   on which a Strict cookie would not be sent.
 */
import type { IncomingMessage } from 'node:http';

export interface CookieNames {
  session: string;
  login: string;
}

export function cookieNames(secure: boolean): CookieNames {
  const p = secure ? '__Host-' : '';
  return { session: `${p}gatehouse_console`, login: `${p}gatehouse_login` };
}

/** One cookie's value from the request, or undefined. Duplicates: the first wins (browsers send the most specific first). */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface CookieOptions {
  secure: boolean;
  sameSite: 'Strict' | 'Lax';
  /** Seconds; 0 deletes the cookie. Absent: a browser-session cookie. */
  maxAge?: number;
}

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', `SameSite=${o.sameSite}`];
  if (o.secure) parts.push('Secure');
  if (o.maxAge !== undefined) parts.push(`Max-Age=${o.maxAge}`);
  return parts.join('; ');
}
