// The console's calls to the admin server. Same origin, the session cookie goes along by
// itself; every state-changing call carries the session's CSRF token in X-CSRF-Token.

let csrf = '';

export function setCsrf(token) {
  csrf = token;
}

/** An API failure: the problem detail of the answer (RFC 9457), or the status text. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function answer(res) {
  const type = res.headers.get('content-type') ?? '';
  if (res.ok) return type.includes('json') ? res.json() : res.text();
  // The session ended (idle, absolute age, sign-out elsewhere, a gateway restart): the app offers sign-in again.
  if (res.status === 401) window.dispatchEvent(new Event('gatehouse:signed-out'));
  let detail = `${res.status} ${res.statusText}`;
  if (type.includes('json')) {
    const body = await res.json().catch(() => null);
    if (body && typeof body.detail === 'string') detail = body.detail;
  }
  throw new ApiError(res.status, detail);
}

export async function get(path) {
  return answer(await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' }));
}

export async function post(path, body) {
  return answer(
    await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
}

/** Query string of the non-empty values of an object. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
