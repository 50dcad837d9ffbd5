// One session: its audit events, then its replay — terminal recordings (SSH) in
// asciinema-player, SQL and HTTP sessions as a step-through timeline of their recording.
import { get } from './api.js';
import { facts, h, heading, when } from './dom.js';
import { timeline } from './timeline.js';

export function render(main, ctx, id) {
  const disposers = [];
  main.append(heading(`Session ${id.slice(0, 8)}`), h('p', { role: 'status' }, 'Loading…'));
  Promise.all([get(`/api/v1/sessions/${id}`), get(`/ui/api/sessions/${id}/terminals`)]).then(
    ([s, t]) => {
      main.querySelector('[role=status]').remove();
      const start = s.events.find((e) => e.kind === 'session.start') ?? s.events[0];
      main.append(
        facts([
          ['Session', h('code', {}, id)],
          ['Connector', `${start.connector} (${start.protocol})`],
          ['Subject', start.identity?.subject ?? '—'],
          ['Groups', start.identity?.groups?.join(', ')],
          ['Peer', start.meta?.peer],
          ['Started', when(start.time)],
        ]),
        h('section', { 'aria-labelledby': 'replay-h' }, h('h2#replay-h', {}, 'Replay'), replay(id, s.recording, t.terminals, disposers)),
        h('section', { 'aria-labelledby': 'events-h' }, h('h2#events-h', {}, 'Audit events'), eventTable(s.events)),
      );
    },
    (e) => ctx.flash(`Cannot load session: ${e.message}`),
  );
  return () => disposers.forEach((d) => d());
}

function replay(id, recording, terminals, disposers) {
  const out = h('div.replay');
  for (const t of terminals) {
    const box = h('div.player', { 'data-terminal': t.n, role: 'region', 'aria-label': `Terminal ${t.n} recording` }, 'Loading the recording…');
    out.append(h('h3', {}, `Terminal ${t.n}`), box);
    fetch(`/ui/api/sessions/${id}/terminals/${t.n}.cast`, { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`${r.status}`))))
      .then((cast) => {
        box.textContent = '';
        // The poster is the frame just after the first output: what the session showed first.
        const first = cast
          .split('\n')
          .slice(1)
          .map((l) => {
            try {
              return JSON.parse(l);
            } catch {
              return null;
            }
          })
          .find((e) => Array.isArray(e) && e[1] === 'o');
        const at = first ? Math.max(0, first[0]) + 0.05 : 0;
        const player = window.AsciinemaPlayer.create({ data: cast }, box, { poster: `npt:${at.toFixed(3)}`, fit: 'width', idleTimeLimit: 2, terminalFontSize: 'small' });
        disposers.push(() => player.dispose());
      })
      .catch((e) => (box.textContent = `The recording cannot be loaded (${e.message}).`));
  }
  if (recording?.entries?.length) out.append(h('h3', {}, 'Timeline'), timeline(recording, disposers));
  if (!terminals.length && !recording?.entries?.length) out.append(h('p.empty', {}, 'No recording of this session.'));
  return out;
}

function eventTable(events) {
  return h(
    'div.scroll',
    {},
    h(
      'table.events',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['#', 'Time', 'Kind', 'Unit', 'Decision', 'Result'].map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        events.map((e) =>
          h(
            'tr',
            { 'data-kind': e.kind },
            h('td', {}, e.seq),
            h('td', {}, when(e.time)),
            h('td', {}, e.kind),
            h('td', {}, e.unit ? h('code', {}, e.unit.text) : ''),
            h('td', {}, e.decision ? `${e.decision.action}${e.decision.rule ? ` (${e.decision.rule})` : ''}` : ''),
            h('td', {}, resultText(e.result)),
          ),
        ),
      ),
    ),
  );
}

function resultText(r) {
  if (!r) return '';
  return [
    r.status !== undefined ? `status ${r.status}` : '',
    r.rows !== undefined ? `${r.rows} rows` : '',
    r.durationMs !== undefined ? `${r.durationMs.toFixed(2)} ms` : '',
    r.error ?? '',
  ]
    .filter(Boolean)
    .join(', ');
}
