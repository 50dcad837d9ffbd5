// Per-connector charts of the audit events: units per minute, denials per minute and the
// p99 unit latency, drawn as inline SVG (no chart library), each with a data table for
// screen readers and anyone who wants the numbers.
import { get, query } from './api.js';
import { h, heading } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 360;
const H = 120;
const PAD = { l: 36, r: 6, t: 8, b: 18 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** One chart: bars (counts) or a line (latency, gaps where a minute had no unit). */
function chart(title, values, kind, unit) {
  const max = Math.max(1, ...values.filter((v) => v !== null));
  const n = values.length;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (i) => PAD.l + (i / n) * iw;
  const y = (v) => PAD.t + ih - (v / max) * ih;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: highest ${fmt(max)}${unit}`, class: `chart ${kind}` }, s('title', {}, title));
  svg.append(
    s('line', { x1: PAD.l, y1: PAD.t + ih, x2: W - PAD.r, y2: PAD.t + ih, class: 'axis' }),
    s('text', { x: PAD.l - 4, y: PAD.t + 8, 'text-anchor': 'end', class: 'tick' }, fmt(max)),
    s('text', { x: PAD.l - 4, y: PAD.t + ih, 'text-anchor': 'end', class: 'tick' }, '0'),
    s('text', { x: PAD.l, y: H - 4, class: 'tick' }, `-${n} min`),
    s('text', { x: W - PAD.r, y: H - 4, 'text-anchor': 'end', class: 'tick' }, 'now'),
  );
  if (kind === 'bars') {
    const bw = Math.max(1, iw / n - 1);
    values.forEach((v, i) => v && svg.append(s('rect', { x: x(i), y: y(v), width: bw, height: PAD.t + ih - y(v), class: 'bar' })));
  } else {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) return (pen = false);
      d += `${pen ? 'L' : 'M'}${(x(i) + iw / n / 2).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    svg.append(s('path', { d, class: 'line' }));
    values.forEach((v, i) => v !== null && svg.append(s('circle', { cx: x(i) + iw / n / 2, cy: y(v), r: 1.8, class: 'dot' })));
  }
  return h('figure.chart', {}, svg, h('figcaption', {}, title));
}

const fmt = (v) => (v >= 100 ? Math.round(v) : Number(v.toFixed(2)));

export function render(main, ctx, params) {
  const minutes = ['15', '60', '360', '1440'].includes(params.get('minutes')) ? params.get('minutes') : '60';
  const select = h(
    'select#minutes',
    { onchange: () => (location.hash = `#/charts${query({ minutes: select.value })}`) },
    [
      ['15', 'last 15 minutes'],
      ['60', 'last hour'],
      ['360', 'last 6 hours'],
      ['1440', 'last 24 hours'],
    ].map(([v, t]) => h('option', { value: v, selected: v === minutes }, t)),
  );
  const status = h('p', { role: 'status' }, 'Loading…');
  main.append(heading('Charts'), h('div.toolbar', {}, h('label', { for: 'minutes' }, 'Window '), select), status);
  get(`/ui/api/charts${query({ minutes })}`).then(
    (r) => {
      status.textContent = r.connectors.length ? (r.truncated ? 'Only the first 10 000 units of the window are counted.' : '') : 'No units in this window.';
      for (const c of r.connectors) {
        const total = c.units.reduce((a, b) => a + b, 0);
        const denied = c.denials.reduce((a, b) => a + b, 0);
        const rows = c.units.map((u, i) => [new Date(Date.parse(r.from) + i * 60_000).toLocaleTimeString(), u, c.denials[i], c.p99[i]]).filter((row) => row[1] > 0);
        main.append(
          h(
            'section.connector-charts',
            { 'aria-labelledby': `c-${c.name}`, 'data-connector': c.name },
            h('h2', { id: `c-${c.name}` }, c.name),
            h('p', {}, `${total} units, ${denied} denied.`),
            h(
              'div.charts',
              {},
              chart(`${c.name}: units per minute`, c.units, 'bars', ''),
              chart(`${c.name}: denials per minute`, c.denials, 'bars', ''),
              chart(`${c.name}: p99 latency (ms)`, c.p99, 'line', ' ms'),
            ),
            h(
              'details',
              {},
              h('summary', {}, 'Numbers'),
              h(
                'div.scroll',
                {},
                h(
                  'table',
                  {},
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      ['Minute', 'Units', 'Denials', 'p99 ms'].map((t) => h('th', { scope: 'col' }, t)),
                    ),
                  ),
                  h(
                    'tbody',
                    {},
                    rows.map((row) =>
                      h(
                        'tr',
                        {},
                        row.map((v) => h('td', {}, v === null ? '—' : v)),
                      ),
                    ),
                  ),
                ),
              ),
            ),
          ),
        );
      }
    },
    (e) => {
      status.textContent = '';
      ctx.flash(`Cannot load charts: ${e.message}`);
    },
  );
}
