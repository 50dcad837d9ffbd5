/**
 * One caller's connection after login: the kit's two-socket pump, with the PostgreSQL
 * conversation on top — caller messages judged and forwarded (caller-messages.ts), upstream
 * messages attributed, masked and recorded (server-messages.ts), the audit accounting in
 * between (statement-audit.ts). This file only wires them and owns the ways a session ends.
 */
import type { Socket } from 'node:net';
import type { Logger, Session } from '@gatehouse/core';
import { FramePump, type Side } from '@gatehouse/connector-kit';
import { CallerMessages } from './caller-messages.js';
import type { Catalog } from './catalog.js';
import { Conversation } from './conversation.js';
import { MessageFramer, type Frame, type FrameError } from './framer.js';
import { CatalogRestrictedView } from './restricted-view.js';
import { ServerMessages } from './server-messages.js';
import { StatementAudit } from './statement-audit.js';
import { B, errorResponse } from './wire.js';

export interface RelayOptions {
  database: string;
  onParseError: 'deny' | 'allow';
  maxMessageBytes: number;
  maxResultMessageBytes: number;
  /** Most named statements / portals a session may hold. */
  maxNamed: number;
  /**
   * The upstream's catalog: result columns are traced to `schema.table.column` through it,
   * and restricted SQL asks it about relations and functions. Null: trace by output name only.
   */
  catalog: Catalog | null;
  /** `restricted`: a masked caller's statements whose output masking cannot follow are refused. */
  maskingMode: 'restricted' | 'permissive';
  log: Logger;
  /** Called once when both sockets are closed and the session has ended. */
  onClose: () => void;
}

export class Relay {
  private readonly pump: FramePump<Frame>;

  constructor(
    client: Socket,
    upstream: Socket,
    private readonly session: Session,
    private readonly options: RelayOptions,
  ) {
    const conversation = new Conversation();
    const audit = new StatementAudit(session);
    const restricted = session.masker.active && options.maskingMode === 'restricted' && options.catalog ? new CatalogRestrictedView(session.masker, options.catalog) : null;
    const caller = new CallerMessages(
      conversation,
      session,
      audit,
      { ...options, restricted },
      {
        toUpstream: (b) => this.pump.toUpstream(b),
        protocolError: (sqlstate, message) => this.protocolError(sqlstate, message),
        terminate: () => {
          this.pump.flushUpstream();
          this.close('client terminated');
        },
        // Straight to the socket, at a message boundary: flushing the pump's queue could send a
        // reply whose audit event is not yet durable. A write to a caller that has gone away
        // fails, which closes the session and cancels the held request.
        notice: (text) => {
          if (!this.pump.closed) client.write(errorResponse({ severity: 'NOTICE', code: '00000', message: text }, B.NoticeResponse));
        },
      },
    );
    const server = new ServerMessages(conversation, session, audit, options.catalog, {
      toClient: (b) => this.pump.toClient(b),
      upstreamViolation: (message) => this.upstreamViolation(message),
    });
    this.pump = new FramePump<Frame>(client, upstream, new MessageFramer(options.maxMessageBytes), new MessageFramer(options.maxResultMessageBytes), {
      onClientFrame: (f) => caller.onFrame(f),
      onUpstreamFrame: (f) => server.onFrame(f),
      onFramingError: (side, e) => this.framingError(side, e as FrameError),
      onInternalError: (_side, e) => this.fatal('internal error', e),
      onSocketError: (side, e) =>
        side === 'client' ? options.log.debug({ err: e.message }, 'client socket error') : options.log.warn({ err: e.message }, 'upstream socket error'),
      onClosed: (reason) => void this.session.end(reason).finally(options.onClose),
    });
  }

  start(): void {
    this.pump.start();
  }

  /** Close both sides and end the session (idempotent). */
  close(reason: string): void {
    this.pump.close(reason);
  }

  private framingError(side: Side, e: FrameError): void {
    if (side === 'upstream') {
      this.fatal(`upstream sent an invalid or oversized message (${e.code}, ${e.length} bytes)`);
      return;
    }
    if (e.code === 'too_large') this.protocolError('54000', `message of ${e.length} bytes exceeds max_message_bytes`);
    else this.protocolError('08P01', `invalid message length ${e.length}`);
  }

  /** A frame we refuse: audited, answered with a FATAL error, connection closed. */
  private protocolError(sqlstate: string, message: string): void {
    void this.session.protocolError(message, { sqlstate });
    this.pump.toClient(errorResponse({ severity: 'FATAL', code: sqlstate, message: `gatehouse: ${message}` }));
    this.pump.close(`protocol error: ${message}`, true);
  }

  /**
   * The upstream sent something we did not expect where we are: we no longer know what a
   * message belongs to, so nothing more is relayed (audited; the caller gets a FATAL error).
   */
  private upstreamViolation(message: string): void {
    void this.session.protocolError(`upstream: ${message}`, { sqlstate: '08P01' });
    this.fatal(`protocol error: ${message}; session closed`);
  }

  private fatal(message: string, e?: Error): void {
    this.options.log.error({ err: e?.message }, message);
    if (!this.pump.closed) this.pump.toClient(errorResponse({ severity: 'FATAL', code: '08006', message: `gatehouse: ${message}` }));
    this.pump.close(message, true);
  }
}
