/**
 * Outgoing notifications: a signed JSON webhook and a Slack-compatible message per change.
 * Delivery never blocks the gateway: messages go on a bounded queue per hook (the oldest is
 * dropped when full), each attempt has a timeout, failures are retried with exponential
 * back-off, and one slow hook never delays another.
 */
import { createHmac } from 'node:crypto';
import type { ApprovalNotifyConfig, Logger } from '@gatehouse/core';
import type { Approval } from './types.js';

export type ChangeKind = 'requested' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'used';

export interface NotifierOptions {
  hooks: readonly ApprovalNotifyConfig[];
  /** Base of the console links (`${consoleUrl}/ui/approvals/{id}`). */
  consoleUrl: string;
  logger: Logger;
  /** Per-attempt timeout (default 5 s). */
  timeoutMs?: number;
  /** Attempts per message (default 5): 0.5 s, 1 s, 2 s, 4 s apart. */
  attempts?: number;
  baseDelayMs?: number;
  /** Messages waiting per hook (default 1000). */
  maxQueue?: number;
}

export interface Notifier {
  notify(kind: ChangeKind, approval: Approval): void;
  /** Stop: waits up to `ms` for queued messages, then drops the rest. */
  close(ms?: number): Promise<void>;
  /** Dropped because a queue was full (for tests and metrics). */
  readonly dropped: number;
}

export const SIGNATURE_HEADER = 'x-gatehouse-signature';
export const TIMESTAMP_HEADER = 'x-gatehouse-timestamp';

/**
 * `sha256=` + hex HMAC-SHA256 over `<timestamp>.<body>` with the hook's secret. The timestamp
 * is signed too, so that a receiver that refuses old timestamps refuses replays.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

type Message = { body: string; headers: Record<string, string> };

class HookQueue {
  private readonly queue: Message[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;
  dropped = 0;

  constructor(
    private readonly url: string,
    private readonly opts: Required<Pick<NotifierOptions, 'timeoutMs' | 'attempts' | 'baseDelayMs' | 'maxQueue'>>,
    private readonly log: Logger,
  ) {}

  push(m: Message): void {
    if (this.stopped) return;
    if (this.queue.length >= this.opts.maxQueue) {
      this.queue.shift();
      this.dropped++;
      this.log.warn({ hook: hostOf(this.url) }, 'notification queue full; oldest message dropped');
    }
    this.queue.push(m);
    // Deliveries start on a later turn: the caller (a reviewer's request, a held unit) never waits for them.
    this.running ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain()).finally(() => (this.running = null));
  }

  private async drain(): Promise<void> {
    let m: Message | undefined;
    while (!this.stopped && (m = this.queue.shift())) await this.deliver(m);
  }

  private async deliver(m: Message): Promise<void> {
    for (let attempt = 1; attempt <= this.opts.attempts && !this.stopped; attempt++) {
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...m.headers },
          body: m.body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
          redirect: 'error',
        });
        await res.body?.cancel().catch(() => {});
        if (res.ok) return;
        this.log.warn({ hook: hostOf(this.url), status: res.status, attempt }, 'notification refused');
      } catch (e) {
        this.log.warn({ hook: hostOf(this.url), err: (e as Error).message, attempt }, 'notification failed');
      }
      if (attempt < this.opts.attempts) await sleep(this.opts.baseDelayMs * 2 ** (attempt - 1));
    }
  }

  async close(ms: number): Promise<void> {
    if (this.running) await Promise.race([this.running, sleep(ms)]);
    this.stopped = true;
    this.queue.length = 0;
  }
}

/** Never log a URL's path or query: a Slack webhook URL is itself a secret. */
const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid';
  }
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export function createNotifier(o: NotifierOptions): Notifier {
  const opts = { timeoutMs: o.timeoutMs ?? 5000, attempts: o.attempts ?? 5, baseDelayMs: o.baseDelayMs ?? 500, maxQueue: o.maxQueue ?? 1000 };
  const base = o.consoleUrl.replace(/\/+$/, '');
  const hooks = o.hooks.map((h) => ({ h, q: new HookQueue('webhook' in h ? h.webhook : h.slack, opts, o.logger) }));
  return {
    notify(kind, approval) {
      const link = `${base}/ui/approvals/${approval.id}`;
      for (const { h, q } of hooks) {
        if ('webhook' in h) {
          const body = JSON.stringify({ event: `approval.${kind}`, approval, url: link });
          const timestamp = String(Math.floor(Date.now() / 1000));
          q.push({ body, headers: { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signWebhook(h.secret, timestamp, body) } });
        } else q.push({ body: JSON.stringify(slackMessage(kind, approval, link)), headers: {} });
      }
    },
    async close(ms = 2000) {
      await Promise.all(hooks.map(({ q }) => q.close(ms)));
    },
    get dropped() {
      return hooks.reduce((n, { q }) => n + q.dropped, 0);
    },
  };
}

/** Slack Block Kit text escaping: `&`, `<`, `>` only. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A Slack-compatible `{text, blocks}`; the approve / deny links open the console (which asks for a reason). */
export function slackMessage(kind: ChangeKind, a: Approval, link: string): { text: string; blocks: unknown[] } {
  const head = `Approval ${a.id} ${kind}: ${a.requester.subject} on ${a.connector} (rule ${a.rule})`;
  const unit = a.unit.text.length > 500 ? a.unit.text.slice(0, 500) + '…' : a.unit.text;
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${esc(head)}*` } },
    { type: 'section', text: { type: 'mrkdwn', text: '```' + esc(unit).replace(/`/g, "'") + '```' } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: esc(`${a.mode} · ${a.approvals.length}/${a.required} approvals · expires ${a.expiresAt}`) }] },
  ];
  if (kind === 'requested') {
    blocks.push({
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Approve…' }, style: 'primary', url: `${link}?action=approve` },
        { type: 'button', text: { type: 'plain_text', text: 'Deny…' }, style: 'danger', url: `${link}?action=deny` },
      ],
    });
  }
  return { text: `${head}: ${link}`, blocks };
}
