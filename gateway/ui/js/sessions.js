// Sessions list: search and filters (connector, subject, time range, decision, free text),
// kept in the address (#/sessions?…) so a filtered view can be bookmarked and shared.
import { get, query } from './api.js';
import { h, heading, when } from './dom.js';

const FIELDS = ['q', 'connector', 'subject', 'since', 'until', 'decision'];

/** datetime-local value (local time, no zone) → RFC 3339, or '' */
const toIso = (v) => (v ? new Date(v).toISOString() : '');
const toLocal = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

export function render(main, ctx, params) {
  const v = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? '']));
  const field = (name, label, input) => h('div.field', {}, h('label', { for: `f-${name}` }, label), input);
  const text = (name, label, type = 'search') => field(name, label, h('input', { id: `f-${name}`, name, type, value: v[name], autocomplete: 'off' }));
  const form = h(
    'form.filters',
    {
      role: 'search',
      'aria-label': 'Filter sessions',
      onsubmit: (e) => {
        e.preventDefault();
        const f = new FormData(form);
        location.hash = `#/sessions${query({
          q: f.get('q'),
          connector: f.get('connector'),
          subject: f.get('subject'),
          since: toIso(f.get('since')),
          until: toIso(f.get('until')),
          decision: f.get('decision'),
        })}`;
      },
    },
    text('q', 'Search'),
    text('connector', 'Connector'),
    text('subject', 'Subject'),
    field('since', 'From', h('input', { id: 'f-since', name: 'since', type: 'datetime-local', value: toLocal(v.since) })),
    field('until', 'To', h('input', { id: 'f-until', name: 'until', type: 'datetime-local', value: toLocal(v.until) })),
    field(
      'decision',
      'Decision',
      h(
        'select',
        { id: 'f-decision', name: 'decision' },
        ['', 'allow', 'deny', 'review'].map((d) => h('option', { value: d, selected: d === v.decision }, d || 'any')),
      ),
    ),
    h('div.field.submit', {}, h('button', { type: 'submit' }, 'Apply')),
  );
  const status = h('p', { role: 'status' }, 'Loading…');
  const table = h(
    'table.sessions',
    {},
    h('caption.visually-hidden', {}, 'Sessions, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Started', 'Connector', 'Subject', 'Peer', 'Session'].map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
  );
  const tbody = h('tbody');
  table.append(tbody);
  main.append(heading('Sessions'), form, status, h('div.scroll', {}, table));

  get(`/ui/api/sessions${query(v)}`).then(
    (body) => {
      status.textContent = `${body.sessions.length} session${body.sessions.length === 1 ? '' : 's'}${body.truncated ? ' (the newest part of a longer result)' : ''}.`;
      for (const s of body.sessions) {
        tbody.append(
          h(
            'tr',
            {},
            h('td', {}, when(s.time)),
            h('td', {}, `${s.connector} (${s.protocol})`),
            h('td', {}, s.identity?.subject ?? '—'),
            h('td', {}, s.meta?.peer ?? ''),
            h('td', {}, h('a', { href: `#/session/${s.session}` }, h('code', {}, s.session.slice(0, 8)), h('span.visually-hidden', {}, ` session ${s.session}`))),
          ),
        );
      }
    },
    (e) => {
      status.textContent = '';
      ctx.flash(`Cannot load sessions: ${e.message}`);
    },
  );
}
