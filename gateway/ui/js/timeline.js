// Step-through replay of a SQL or HTTP session's recording (the JSON-lines timeline):
// one step at a time with its timing, decision, result and masked sample; play advances
// at the recorded pace (gaps capped at 2 s). Keyboard: the step list is a listbox.
import { clear, facts, h } from './dom.js';

export function timeline(recording, disposers) {
  const entries = recording.entries.filter((e) => e.t >= 0 || e.type === 'truncated');
  let i = 0;
  let timer = null;
  const detail = h('div.step-detail', { 'aria-live': 'polite' });
  const position = h('span.position');
  const list = h('ol.steps', { role: 'listbox', tabindex: '0', 'aria-label': 'Timeline steps' });
  const items = entries.map((e, n) =>
    h(
      'li',
      { role: 'option', id: `step-${n}`, 'aria-selected': 'false', onclick: () => show(n) },
      h('span.t', {}, `+${(e.t / 1000).toFixed(3)}s`),
      ' ',
      h('span.type', {}, e.type),
      e.decision && e.decision !== 'allow' ? h('span.badge', { 'data-status': e.decision }, e.decision) : '',
      ' ',
      h('span.text', {}, (e.text ?? '').slice(0, 120)),
    ),
  );
  list.append(...items);

  function show(n) {
    i = Math.max(0, Math.min(entries.length - 1, n));
    items.forEach((it, k) => it.setAttribute('aria-selected', String(k === i)));
    list.setAttribute('aria-activedescendant', `step-${i}`);
    items[i].scrollIntoView?.({ block: 'nearest' });
    const e = entries[i];
    position.textContent = `Step ${i + 1} of ${entries.length}`;
    clear(detail).append(
      h('pre.unit', {}, e.text ?? ''),
      facts([
        ['At', `+${(e.t / 1000).toFixed(3)} s`],
        ['Type', e.type],
        ['Decision', e.decision ? `${e.decision}${e.rule ? ` (rule ${e.rule})` : ''}` : ''],
        ['Status', e.status],
        ['Rows', e.rows],
        ['Bytes', e.bytes],
        ['Duration', e.durationMs !== undefined ? `${Number(e.durationMs).toFixed(2)} ms` : ''],
        ['Error', e.error],
      ]),
      e.sample !== undefined ? sample(e.sample) : '',
      e.data ? h('pre.data', {}, e.data) : '',
    );
  }

  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    play.textContent = 'Play';
    play.setAttribute('aria-pressed', 'false');
  };
  const step = () => {
    if (i >= entries.length - 1) return stop();
    const gap = Math.min(2000, Math.max(0, entries[i + 1].t - entries[i].t));
    timer = setTimeout(() => {
      show(i + 1);
      step();
    }, gap);
  };
  const play = h(
    'button',
    {
      type: 'button',
      'aria-pressed': 'false',
      onclick: () => {
        if (timer) return stop();
        if (i >= entries.length - 1) show(0);
        play.textContent = 'Pause';
        play.setAttribute('aria-pressed', 'true');
        step();
      },
    },
    'Play',
  );
  list.addEventListener('keydown', (ev) => {
    const k = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[ev.key];
    if (k) {
      ev.preventDefault();
      show(i + k);
    } else if (ev.key === 'Home') show(0);
    else if (ev.key === 'End') show(entries.length - 1);
  });
  disposers.push(stop);
  const box = h(
    'div.timeline',
    {},
    h(
      'div.toolbar',
      {},
      h('button', { type: 'button', onclick: () => show(i - 1) }, 'Previous'),
      play,
      h('button', { type: 'button', onclick: () => show(i + 1) }, 'Next'),
      position,
    ),
    h('div.timeline-body', {}, list, detail),
  );
  if (entries.length) show(0);
  return box;
}

/** A masked sample: rows (arrays of objects or arrays) as a table, anything else as JSON. */
function sample(s) {
  const rows = Array.isArray(s) ? s : Array.isArray(s?.rows) ? s.rows : null;
  if (rows && rows.length && typeof rows[0] === 'object' && rows[0] !== null) {
    const cols = Array.isArray(s?.columns)
      ? s.columns.map((c) => (typeof c === 'string' ? c : (c?.name ?? '?')))
      : Array.isArray(rows[0])
        ? rows[0].map((_, k) => `#${k + 1}`)
        : Object.keys(rows[0]);
    return h(
      'div.scroll.sample',
      {},
      h(
        'table',
        {},
        h('caption', {}, 'Sample (masked)'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            cols.map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((r) =>
            h(
              'tr',
              {},
              (Array.isArray(r) ? r : cols.map((c) => r[c])).map((v) => h('td', {}, v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v))),
            ),
          ),
        ),
      ),
    );
  }
  return h('div.sample', {}, h('p', {}, 'Sample (masked)'), h('pre', {}, JSON.stringify(s, null, 2)));
}
