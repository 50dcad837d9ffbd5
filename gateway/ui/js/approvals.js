// The approvals queue: the list of GET /api/v1/approvals, kept live by the SSE stream
// /api/v1/approvals/events, with approve / deny (a reason required) for reviewers.
import { get, post, query } from './api.js';
import { append, clear, facts, h, heading, when } from './dom.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'used', 'all'];

/** The queue by status, or (`id`: a notification's link) one request, kept live either way. */
export function render(main, ctx, params) {
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : 'pending';
  const only = params.get('id');
  const list = h('ul.cards#approvals', { 'aria-live': 'polite', 'aria-label': 'Approval requests' });
  const live = h('span.live#live', { role: 'status' }, 'connecting…');
  const empty = h('p.empty', {}, only ? 'No such request.' : `No ${status === 'all' ? '' : status + ' '}requests.`);
  const cards = new Map();
  const select = h(
    'select#status',
    { onchange: () => (location.hash = `#/approvals${query({ status: select.value })}`) },
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)),
  );
  append(main, [
    heading(only ? 'Approval request' : 'Approvals'),
    h('div.toolbar', {}, only ? h('a', { href: '#/approvals' }, 'All pending requests') : [h('label', { for: 'status' }, 'Status '), select], live),
    ctx.can('reviewer') ? null : h('p.note', {}, 'You may read the queue; approving and denying needs the reviewer role.'),
    list,
    empty,
  ]);

  const shown = (a) => (only ? a.id === only : status === 'all' || a.status === status);
  const refreshEmpty = () => (empty.hidden = cards.size > 0);

  function upsert(a) {
    const card = cards.get(a.id);
    if (!shown(a)) {
      if (card) {
        card.remove();
        cards.delete(a.id);
      }
      return refreshEmpty();
    }
    if (card) card.update(a);
    else {
      const c = approvalCard(a, ctx);
      cards.set(a.id, c);
      list.prepend(c);
    }
    refreshEmpty();
  }

  const load = only ? get(`/api/v1/approvals/${encodeURIComponent(only)}`).then((a) => [a]) : get(`/api/v1/approvals${query({ status })}`).then((b) => b.approvals);
  load.then(
    (approvals) => {
      for (const a of [...approvals].reverse()) upsert(a);
      refreshEmpty();
    },
    (e) => ctx.flash(`Cannot load approvals: ${e.message}`),
  );

  const events = new EventSource('/api/v1/approvals/events');
  events.addEventListener('open', () => (live.textContent = 'live'));
  events.addEventListener('error', () => (live.textContent = 'reconnecting…'));
  events.addEventListener('approval', (ev) => {
    try {
      upsert(JSON.parse(ev.data));
    } catch {
      // a malformed event is ignored; the next page load shows the truth
    }
  });
  return () => events.close();
}

function approvalCard(a, ctx) {
  const li = h('li.card.approval', { 'data-id': a.id });
  const body = h('div');
  const reasonId = `reason-${a.id}`;
  const reason = h('textarea', { id: reasonId, name: 'reason', required: true, rows: '2', maxlength: '1000' });
  const msg = h('p.error', { role: 'alert' });
  const act = async (what) => {
    msg.textContent = '';
    if (!reason.value.trim()) {
      msg.textContent = 'A reason is required.';
      reason.focus();
      return;
    }
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      li.update(await post(`/api/v1/approvals/${encodeURIComponent(a.id)}/${what}`, { reason: reason.value.trim() }));
    } catch (e) {
      msg.textContent = `${what === 'approve' ? 'Approval' : 'Denial'} refused: ${e.message}`;
    } finally {
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  };
  const form = h(
    'form.decide',
    { onsubmit: (e) => e.preventDefault(), 'aria-label': `Decide request ${a.id}` },
    h('label', { for: reasonId }, 'Reason (required)'),
    reason,
    h(
      'div.buttons',
      {},
      h('button.approve', { type: 'button', onclick: () => act('approve') }, 'Approve'),
      h('button.deny', { type: 'button', onclick: () => act('deny') }, 'Deny'),
    ),
    msg,
  );
  li.update = (x) => {
    Object.assign(a, x);
    clear(body);
    append(body, [
      h('h2', {}, h('span.badge', { 'data-status': x.status }, x.status), ' ', `${x.connector} · ${x.unit?.type ?? 'unit'}`),
      h('pre.unit', {}, x.unit?.text ?? ''),
      facts([
        ['Requested by', `${x.requester?.subject ?? '?'}${x.requester?.groups?.length ? ` (${x.requester.groups.join(', ')})` : ''}`],
        ['Rule', x.rule],
        ['Mode', x.mode],
        ['Created', when(x.createdAt)],
        ['Expires', when(x.expiresAt)],
        ['Approvals', `${x.approvals?.length ?? 0} of ${x.required ?? 1}`],
        ['Request id', h('code', {}, x.id)],
      ]),
      x.approvals?.length
        ? h(
            'ul.trail',
            {},
            x.approvals.map((v) => h('li', {}, `approved by ${v.reviewer} at ${when(v.at)}: ${v.reason}`)),
          )
        : null,
      x.denial ? h('p.trail', {}, `denied by ${x.denial.reviewer} at ${when(x.denial.at)}: ${x.denial.reason}`) : null,
    ]);
    form.hidden = !(ctx.can('reviewer') && x.status === 'pending');
  };
  li.append(body, ctx.can('reviewer') ? form : '');
  li.update(a);
  return li;
}
