/**
 * One forwarded request: the undici dispatch handler that relays the upstream response to
 * the caller with back-pressure, or buffers it (capped) when it must be masked, and that
 * records the audit event before the response's last byte leaves.
 *
 * It uses undici's callback handler (onConnect/onHeaders/onData/onComplete), the same one
 * undici's own `request()` uses: raw header Buffers, no per-response header object, and a
 * `resume` callback for flow control (see docs/decisions/0501-undici-dispatch-handler.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision, Session, Unit } from '@gatehouse/core';
import { relayResponseHeaders, setHeader, type ResponseHead } from './headers.js';
import { maskBody, maskKind, type MaskKind } from './mask-response.js';
import { sendProblem, type Problem } from './problem.js';

/** Per-connector settings an exchange reads (built once at start). */
export interface ExchangeSettings {
  maxBodyBytes: number;
  maskTextBodies: boolean;
  auditBodyBytes: number;
  /** Upstream origin, recorded in every event. */
  upstream: string;
}

/** What the exchange writes into the audit event besides the unit itself. */
export interface AuditExtras {
  headers: Record<string, string>;
  body?: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

export class Exchange {
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private status = 0;
  private head: ResponseHead | null = null;
  private mask: MaskKind = null;
  private chunks: Buffer[] | null = null;
  private bytes = 0;
  private expected = -1;
  /** The chunk completing a Content-Length body, held until the audit event is durable. */
  private held: Buffer | null = null;
  private finished = false;
  private clientGone = false;
  private failure: Problem | null = null;
  requestBytes = 0;
  private bodySample: Buffer[] | null;
  private sampled = 0;
  private readonly onDrain = () => this.resumeUpstream?.();

  constructor(
    private readonly s: ExchangeSettings,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly session: Session,
    private readonly unit: Unit,
    private readonly decision: Decision,
    private readonly startedAt: number,
    private readonly extras: AuditExtras,
    /** Sample the streamed request body into the audit (when it was not buffered). */
    sampleBody: boolean,
  ) {
    this.bodySample = sampleBody && s.auditBodyBytes > 0 ? [] : null;
    res.once('close', () => {
      if (!res.writableFinished) {
        this.clientGone = true;
        this.abortUpstream?.(new Error('client closed the connection'));
      }
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.clientGone) abort(new Error('client closed the connection'));
  }

  onBodySent(chunk: Buffer | string): void {
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    this.requestBytes += n;
    if (this.bodySample !== null && this.sampled < this.s.auditBodyBytes) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const take = Math.min(b.length, this.s.auditBodyBytes - this.sampled);
      this.bodySample.push(take === b.length ? b : b.subarray(0, take));
      this.sampled += take;
    }
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx interim responses are not relayed
    this.status = statusCode;
    this.resumeUpstream = resume;
    const head = relayResponseHeaders(rawHeaders);
    this.head = head;
    const bodyless = this.req.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    this.mask = !bodyless && this.session.masker.active ? maskKind(head.contentType, this.s.maskTextBodies) : null;
    if (this.mask !== null) {
      if (head.contentLength > this.s.maxBodyBytes) {
        this.fail(tooLarge(this.s.maxBodyBytes));
        return false;
      }
      this.chunks = [];
      return true;
    }
    this.expected = bodyless ? -1 : head.contentLength;
    this.res.writeHead(statusCode, statusText, head.headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.chunks !== null) {
      if (this.bytes > this.s.maxBodyBytes) {
        this.fail(tooLarge(this.s.maxBodyBytes));
        return false;
      }
      this.chunks.push(chunk);
      return true;
    }
    if (this.bytes === this.expected) {
      this.held = chunk;
      return true;
    }
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    void this.finish(null);
  }

  onError(e: Error): void {
    void this.finish(e);
  }

  /** Refuse the response (fail closed): stop the upstream and answer with a problem. */
  private fail(p: Problem): void {
    this.failure = p;
    this.abortUpstream?.(new Error(p.detail));
  }

  private async finish(e: Error | null): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.res.off('drain', this.onDrain);
    const { res } = this;
    if (e !== null || this.failure !== null) {
      const problem = this.failure ?? upstreamProblem(e as Error, this.clientGone);
      const status = res.headersSent ? this.status : problem.status;
      await this.record(status, problem.detail);
      if (this.clientGone) return;
      // Headers already out: cut the connection so a truncated body cannot pass for a whole one.
      sendProblem(res, problem, undefined, true);
      return;
    }
    if (this.chunks !== null && this.head !== null) {
      await this.finishMasked(this.chunks, this.head);
      return;
    }
    const recorded = await this.record(this.status);
    if (!recorded) {
      res.destroy();
      return;
    }
    if (this.held !== null) res.end(this.held);
    else res.end();
  }

  private async finishMasked(chunks: Buffer[], head: ResponseHead): Promise<void> {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.bytes);
    const masked = await maskBody(body, this.mask as 'json' | 'text', head.contentEncoding, this.session.masker, this.s.maxBodyBytes);
    if (!masked.ok) {
      const p: Problem = { code: 'masking-failed', status: 502, title: 'Bad Gateway', detail: masked.error.message };
      await this.record(p.status, p.detail);
      sendProblem(this.res, p);
      return;
    }
    const out = masked.value.body;
    const headers = head.headers;
    setHeader(headers, 'content-length', String(out.length));
    if (masked.value.changed) {
      // The representation changed: validators of the upstream's bytes no longer hold.
      setHeader(headers, 'etag', null);
      setHeader(headers, 'content-md5', null);
      setHeader(headers, 'digest', null);
    }
    if (!(await this.record(this.status))) {
      sendProblem(this.res, auditProblem());
      return;
    }
    if (this.clientGone) return;
    this.res.writeHead(this.status, headers);
    this.res.end(out);
  }

  /** One audit event per request; false when the log refused it (the caller then gets no success). */
  private async record(status: number, error?: string): Promise<boolean> {
    const attributes: Record<string, unknown> = { headers: this.extras.headers, upstream: this.s.upstream, request_bytes: this.requestBytes };
    if (this.extras.body !== undefined) attributes.body = this.extras.body;
    else if (this.bodySample !== null && this.sampled > 0) {
      const text = Buffer.concat(this.bodySample, this.sampled).toString('utf8');
      attributes.body = this.session.masker.active ? this.session.masker.maskText(text) : text;
      if (this.requestBytes > this.sampled) attributes.body_truncated = true;
    }
    if (this.mask !== null) attributes.masked = true;
    const r = await this.session.record({
      unit: this.unit,
      decision: this.decision,
      startedAt: this.startedAt,
      result: { status, bytes: this.bytes, durationMs: Date.now() - this.startedAt, ...(error ? { error } : {}) },
      attributes,
    });
    return r.ok;
  }
}

function tooLarge(limit: number): Problem {
  return {
    code: 'response-too-large',
    status: 502,
    title: 'Bad Gateway',
    detail: `response must be masked but exceeds max_body_bytes (${limit}); refused rather than passed unmasked`,
  };
}

export function auditProblem(): Problem {
  return { code: 'audit-unavailable', status: 503, title: 'Service Unavailable', detail: 'audit log unavailable; request refused' };
}

function upstreamProblem(e: Error, clientGone: boolean): Problem {
  if (clientGone) return { code: 'client-closed', status: 499, title: 'Client Closed Request', detail: 'client closed the connection' };
  const code = (e as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code)) return { code: 'upstream-timeout', status: 504, title: 'Gateway Timeout', detail: 'upstream did not answer in time' };
  return { code: 'upstream-error', status: 502, title: 'Bad Gateway', detail: `upstream request failed (${code || e.message})` };
}
