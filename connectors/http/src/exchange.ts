/**
 * One forwarded request: the undici dispatch handler that relays the upstream response to
 * the caller with back-pressure, or — for a masked caller — masks it: headers always, the
 * body buffered (capped) and masked whole, or an event stream masked line by line as it
 * flows. It records the audit event before the response's last byte leaves.
 *
 * It implements undici 7's handler interface (onRequestStart, onResponseStart,
 * onResponseData, onResponseEnd, onResponseError): the DispatchController it is handed
 * pauses and resumes the upstream response and aborts the request; the response's raw header
 * list comes from `controller.rawHeaders` (see docs/decisions/0501-undici-dispatch-handler.md).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Decision, Result, Session, Unit, UnitResult } from '@gatehouse/core';
import { relayResponseHeaders, setHeader, type ResponseHead } from './headers.js';
import { maskBody } from './mask-response.js';
import { mediaType, type MediaType } from './media-type.js';
import { maskResponseHeaders } from './detect-text.js';
import { LineMasker } from './line-masker.js';
import { maskSampleText } from './audit-view.js';
import { sendProblem, type Problem } from './problem.js';
import { then, type Maybe } from '@gatehouse/connector-kit';

/** Per-connector settings an exchange reads (built once at start). */
export interface ExchangeSettings {
  maxBodyBytes: number;
  /** What a masked caller gets for a body the JSON rules cannot read: detector-masked, or 502. */
  unknownContent: 'detectors' | 'refuse';
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

export class Exchange implements Dispatcher.DispatchHandler {
  /** The current attempt's controller (undici may retry an idempotent request on a new one). */
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private head: ResponseHead | null = null;
  /** The response went through the caller's masking (headers at least). */
  private masked = false;
  private media: MediaType | null = null;
  /** Buffered body of a masked response, up to `cap` bytes (0: any byte refuses it). */
  private chunks: Buffer[] | null = null;
  private cap = 0;
  private capProblem: Problem | null = null;
  /** An event stream masked line by line. */
  private lines: LineMasker | null = null;
  private bytes = 0;
  private expected = -1;
  /** The chunk completing a Content-Length body, held until the audit event is durable. */
  private held: Buffer | null = null;
  private finished = false;
  private clientGone = false;
  private failure: Problem | null = null;
  /** Request body bytes passed on to the upstream (a buffered body: its length). */
  requestBytes = 0;
  private bodySample: Buffer[] | null;
  private sampled = 0;
  private readonly onDrain = () => this.controller?.resume();

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
        this.controller?.abort(new Error('client closed the connection'));
      }
    });
  }

  /**
   * The streamed request body on its way to the upstream: the caller's stream through a pass-through
   * that counts it and keeps its first `audit_body_bytes` for the audit. Back-pressure holds (undici
   * pauses what it reads, the pipeline pauses the caller); an error on either side ends both.
   */
  relayRequestBody(req: IncomingMessage): Readable {
    const tap = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.sampleRequestBody(chunk);
        done(null, chunk);
      },
    });
    pipeline(req, tap, () => {}); // the error reaches undici through `tap`, and the caller through `res`
    return tap;
  }

  private sampleRequestBody(chunk: Buffer): void {
    this.requestBytes += chunk.length;
    if (this.bodySample !== null && this.sampled < this.s.auditBodyBytes) {
      const take = Math.min(chunk.length, this.s.auditBodyBytes - this.sampled);
      this.bodySample.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.sampled += take;
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusText?: string): void {
    if (statusCode < 200) return; // 1xx interim responses are not relayed
    this.status = statusCode;
    const head = relayResponseHeaders(rawHeadersOf(controller, headers));
    this.head = head;
    const bodyless = this.req.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    if (this.session.masker.active) {
      this.onMaskedHeaders(head, bodyless);
      return;
    }
    this.expected = bodyless ? -1 : head.contentLength;
    if (statusText !== undefined) this.res.writeHead(statusCode, statusText, head.headers);
    else this.res.writeHead(statusCode, head.headers);
  }

  /**
   * A masked caller: header values through the detectors, the upstream's reason phrase
   * replaced by the standard one, and the body planned: buffered and masked whole (JSON,
   * NDJSON, and other types with `unknown_content: detectors`), streamed line by line (an
   * uncompressed event stream), or refused as soon as a byte of it arrives.
   */
  private onMaskedHeaders(head: ResponseHead, bodyless: boolean): void {
    this.masked = true;
    maskResponseHeaders(head.headers, this.session.masker);
    if (bodyless) {
      this.res.writeHead(this.status, head.headers);
      return;
    }
    // Range is removed from a masked caller's requests: a part of a body cannot be masked.
    if (this.status === 206) return this.fail(maskingProblem('a partial (206) response cannot be masked'));
    if (head.contentTypes > 1) return this.fail(maskingProblem('several Content-Type headers: the body cannot be masked with certainty'));
    const media = mediaType(head.contentType);
    this.media = media;
    const structured = media.kind === 'json' || media.kind === 'ndjson';
    if (!structured && this.s.unknownContent === 'refuse') {
      this.cap = 0;
      this.capProblem = maskingProblem(`a ${media.kind === 'opaque' ? 'non-text' : media.kind} body cannot be masked by JSON rules and unknown_content is refuse`);
    } else if (media.kind === 'sse' && head.contentEncoding === '' && media.space !== null) {
      const headers = head.headers;
      setHeader(headers, 'content-length', null);
      dropValidators(headers);
      this.lines = new LineMasker(this.session.masker, this.s.maxBodyBytes);
      this.res.writeHead(this.status, headers);
      return;
    } else {
      this.cap = this.s.maxBodyBytes;
      this.capProblem = tooLarge(this.s.maxBodyBytes);
    }
    if (head.contentLength > this.cap) return this.fail(this.capProblem);
    this.chunks = [];
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.chunks !== null) {
      if (this.bytes > this.cap) return this.fail(this.capProblem as Problem);
      this.chunks.push(chunk);
      return;
    }
    if (this.lines !== null) {
      const out = this.lines.push(chunk);
      if ('error' in out) return this.fail(maskingProblem(out.error));
      if (out.length > 0 && !this.res.write(out)) this.pauseUntilDrain(controller);
      return;
    }
    if (this.bytes === this.expected) {
      this.held = chunk;
      return;
    }
    if (!this.res.write(chunk)) this.pauseUntilDrain(controller);
  }

  /** Back-pressure: the caller's socket is full; read no more from the upstream until it drains. */
  private pauseUntilDrain(controller: Dispatcher.DispatchController): void {
    controller.pause();
    this.res.once('drain', this.onDrain);
  }

  onResponseEnd(): void {
    this.finish(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, e: Error): void {
    this.finish(e);
  }

  /** Refuse the response (fail closed): stop the upstream and answer with a problem. */
  private fail(p: Problem): void {
    this.failure = p;
    this.controller?.abort(new Error(p.detail));
  }

  /**
   * The end of the exchange: the audit event, then the caller's last bytes. Runs on in the
   * same turn when the record is synchronous (`batched`), after the write when it is not.
   * Whatever throws here cuts the caller's connection: an unaudited or half-masked response
   * must not look complete.
   */
  private finish(e: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.res.off('drain', this.onDrain);
    try {
      const done = this.settle(e);
      if (done instanceof Promise) done.catch(() => this.res.destroy());
    } catch {
      this.res.destroy();
    }
  }

  private settle(e: Error | null): Maybe<void> {
    const { res } = this;
    if (e !== null || this.failure !== null) {
      const problem = this.failure ?? upstreamProblem(e as Error, this.clientGone);
      const status = res.headersSent ? this.status : problem.status;
      return then(this.record(status, problem.detail), () => {
        if (this.clientGone) return;
        // Headers already out: cut the connection so a truncated body cannot pass for a whole one.
        sendProblem(res, problem, undefined, true);
      });
    }
    if (this.chunks !== null && this.head !== null) return this.finishMasked(this.chunks, this.head);
    if (this.lines !== null) return this.finishLines(this.lines);
    return then(this.record(this.status), (recorded) => {
      if (!recorded) res.destroy();
      else if (this.held !== null) res.end(this.held);
      else res.end();
    });
  }

  private finishMasked(chunks: Buffer[], head: ResponseHead): Maybe<void> {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.bytes);
    return then(maskBody(body, this.media as MediaType, head.contentEncoding, this.session.masker, this.s.maxBodyBytes), (masked) => {
      if (!masked.ok) {
        const p = maskingProblem(masked.error.message);
        return then(this.record(p.status, p.detail), () => sendProblem(this.res, p));
      }
      const out = masked.value.body;
      const headers = head.headers;
      setHeader(headers, 'content-length', String(out.length));
      // The representation changed: validators of the upstream's bytes no longer hold.
      if (masked.value.changed) dropValidators(headers);
      return then(this.record(this.status), (recorded) => {
        if (!recorded) {
          sendProblem(this.res, auditProblem());
          return;
        }
        if (this.clientGone) return;
        this.res.writeHead(this.status, headers);
        this.res.end(out);
      });
    });
  }

  /** End of a line-masked stream: the held last line, then the audit event, then the end. */
  private finishLines(lines: LineMasker): Maybe<void> {
    const tail = lines.end();
    if ('error' in tail) {
      // Headers are out: a cut connection is the only honest refusal left.
      return then(this.record(this.status, tail.error), () => void this.res.destroy());
    }
    return then(this.record(this.status), (recorded) => {
      if (!recorded) this.res.destroy();
      else this.res.end(tail);
    });
  }

  /**
   * One audit event per request; false when the log refused it (the caller then gets no
   * success). A plain boolean when the audit promises durability within a window, a promise
   * when the reply must wait for the write (`strict`).
   */
  private record(status: number, error?: string): Maybe<boolean> {
    const attributes: Record<string, unknown> = { headers: this.extras.headers, upstream: this.s.upstream, request_bytes: this.requestBytes };
    if (this.extras.body !== undefined) attributes.body = this.extras.body;
    else if (this.bodySample !== null && this.sampled > 0) {
      attributes.body = maskSampleText(Buffer.concat(this.bodySample, this.sampled).toString('utf8'), this.session.masker);
      if (this.requestBytes > this.sampled) attributes.body_truncated = true;
    }
    if (this.masked) attributes.masked = true;
    const result: UnitResult = { status, bytes: this.bytes, durationMs: Date.now() - this.startedAt };
    // An error may quote upstream text (a charset, a coding): detectors first, as for everything a masked caller's event holds.
    if (error) result.error = this.masked ? this.session.masker.maskText(error) : error;
    const r = this.session.record({ unit: this.unit, decision: this.decision, startedAt: this.startedAt, result, attributes });
    return r instanceof Promise ? r.then(isOk) : r.ok;
  }
}

const isOk = (r: Result<void>): boolean => r.ok;

/**
 * The response's header list as the upstream sent it (order and repeats kept: two Content-Type
 * headers must stay two). undici hands it over as `controller.rawHeaders`; the parsed object is
 * the fallback, its repeated headers (arrays) flattened back into one entry each.
 */
function rawHeadersOf(controller: Dispatcher.DispatchController, parsed: IncomingHttpHeaders): Buffer[] | string[] {
  const raw = controller.rawHeaders;
  if (Array.isArray(raw)) return raw;
  const out: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else if (value !== undefined) out.push(name, value);
  }
  return out;
}

function dropValidators(headers: string[]): void {
  setHeader(headers, 'etag', null);
  setHeader(headers, 'content-md5', null);
  setHeader(headers, 'digest', null);
}

function maskingProblem(detail: string): Problem {
  return { code: 'masking-failed', status: 502, title: 'Bad Gateway', detail };
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
