/** Latency percentiles and the small number formatting the reports share. */

/** Milliseconds at the 50th, 99th and 99.9th percentile. */
export interface Latency {
  p50: number;
  p99: number;
  p999: number;
}

export const NO_LATENCY: Latency = { p50: NaN, p99: NaN, p999: NaN };

/** Percentiles of samples (any unit; the result is in the same unit, scaled by `scale`). */
export function percentiles(samples: number[] | Float64Array, scale = 1): Latency {
  const s = Float64Array.from(samples).sort();
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))] * scale : NaN);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** Percentiles of a histogram: [value, count] pairs in ascending value order. */
export function histogramPercentiles(buckets: [number, number][]): Latency {
  const total = buckets.reduce((a, [, c]) => a + c, 0);
  const at = (p: number) => {
    let seen = 0;
    for (const [v, c] of buckets) {
      seen += c;
      if (seen >= total * p) return v;
    }
    return NaN;
  };
  return total ? { p50: at(0.5), p99: at(0.99), p999: at(0.999) } : NO_LATENCY;
}

export function minus(a: Latency, b: Latency): Latency {
  return { p50: a.p50 - b.p50, p99: a.p99 - b.p99, p999: a.p999 - b.p999 };
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Number.isFinite(n) ? Math.round(n * f) / f : NaN;
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a && b && Number.isFinite(a) && Number.isFinite(b) ? round(a / b, 2) : null;
}

/** A table cell: "—" for what was not measured. */
export function cell(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
