/** `host:port` / `[v6]:port` → parts. The config schema has already checked the shape. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(i + 1)) };
}

/** Bound address as `host:port` (IPv6 in brackets), for logs and for tests to connect to. */
export function formatAddress(a: { address: string; port: number; family: string | number }): string {
  return a.family === 'IPv6' || a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback: where a clear-text token is tolerated. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/**
 * Bind a server (net, tls or http) to `host:port` from the config; resolves with the bound
 * address (the real port when the config says `:0`), rejects with the bind error.
 */
export async function listenOn(server: import('node:net').Server, listen: string): Promise<string> {
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error(`listener on ${listen} has no address`);
  return formatAddress(a);
}
