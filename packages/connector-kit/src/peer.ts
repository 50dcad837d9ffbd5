/**
 * Facts about a caller's socket that every connector records and checks the same way.
 */
import type { Socket } from 'node:net';
import { isLoopback, type PeerInfo } from '@gatehouse/core';

/** Remote address and port of an accepted socket, as the Session records them. */
export function peerOf(socket: Socket, tls = false): PeerInfo {
  return { address: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0, tls };
}

/** The one refusal text for a token offered in clear text off loopback. */
export const CLEARTEXT_REFUSAL = 'TLS is required: the password is a token and is never accepted in clear text off loopback';

/**
 * A token (password, bearer) may only travel in clear text on loopback: anywhere else the
 * connection must be TLS. Returns the refusal text, or null when the token may be read.
 */
export function cleartextTokenRefusal(peer: PeerInfo): string | null {
  return !peer.tls && !isLoopback(peer.address) ? CLEARTEXT_REFUSAL : null;
}

/**
 * A start-up deadline (TLS, negotiation, login): `onExpire` runs once if `clear()` was not
 * called within `ms`. `expired` tells a waiting step why its socket went away.
 */
export class Deadline {
  private readonly timer: NodeJS.Timeout;
  private expired_ = false;

  constructor(ms: number, onExpire: () => void) {
    this.timer = setTimeout(() => {
      this.expired_ = true;
      onExpire();
    }, ms);
    this.timer.unref();
  }

  get expired(): boolean {
    return this.expired_;
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/**
 * End a socket gracefully: let the last bytes (an error the caller should read) go out, then
 * destroy it a second later at the latest.
 */
export function endGracefully(socket: Socket, last?: Buffer | string): void {
  if (socket.destroyed) return;
  if (last === undefined) socket.end();
  else socket.end(last);
  setTimeout(() => socket.destroy(), 1000).unref();
}
