/**
 * The latency chart of docs/benchmarks.md as a plain SVG: per target, three horizontal bars
 * (p50, p99, p99.9 latency added over direct at the fixed offered rate), each labelled with
 * its value. A square-root scale keeps sub-millisecond p50s visible next to p99.9 tails.
 */
export interface ChartRow {
  label: string;
  p50: number;
  p99: number;
  p999: number;
}

const COLORS = { p50: '#4e79a7', p99: '#f28e2b', p999: '#e15759' } as const;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function latencyChart(rows: ChartRow[], title: string): string {
  const labelW = 250;
  const plotW = 520;
  const bar = 9;
  const group = bar * 3 + 12;
  const top = 56;
  const height = top + rows.length * group + 40;
  const width = labelW + plotW + 90;
  const max = Math.max(0.001, ...rows.flatMap((r) => [r.p50, r.p99, r.p999]).filter((v) => Number.isFinite(v)));
  const scale = (v: number) => (Number.isFinite(v) && v > 0 ? Math.sqrt(v / max) * plotW : 0);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  let lx = labelW;
  for (const [k, name] of [
    ['p50', 'p50'],
    ['p99', 'p99'],
    ['p999', 'p99.9'],
  ] as const) {
    out.push(`<rect x="${lx}" y="30" width="12" height="10" fill="${COLORS[k]}"/><text x="${lx + 16}" y="39">${name} added (ms)</text>`);
    lx += 110;
  }
  // Grid lines at round values (at most six) on the square-root scale.
  const ticks = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500].filter((v) => v <= max);
  for (const v of ticks.filter((_, i) => i >= ticks.length - 6)) {
    const x = (labelW + scale(v)).toFixed(1);
    out.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${height - 30}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${height - 16}" text-anchor="middle" fill="#666">${v}</text>`);
  }
  out.push(`<text x="${labelW + plotW / 2}" y="${height - 3}" text-anchor="middle" fill="#666">ms added over direct (square-root scale)</text>`);
  rows.forEach((r, i) => {
    const y = top + i * group;
    out.push(`<text x="${labelW - 8}" y="${y + bar * 1.5 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    (['p50', 'p99', 'p999'] as const).forEach((k, j) => {
      const v = r[k];
      const w = scale(v);
      const by = y + j * bar;
      out.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${bar - 1}" fill="${COLORS[k]}"/>`);
      out.push(`<text x="${labelW + w + 4}" y="${by + bar - 1}" font-size="9" fill="#333">${Number.isFinite(v) ? v.toFixed(3) : '—'}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
