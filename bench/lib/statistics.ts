/** The median of `values` (the mean of the middle two for an even count); NaN for none. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Latencies in whole milliseconds up to a minute (longer ones count as a minute), and their percentiles. */
export class LatencyHistogram {
  readonly #counts = new Uint32Array(60_001);
  count = 0;

  record(ms: number): void {
    const at = Math.min(60_000, Math.max(0, Math.round(ms)));
    this.#counts[at] = (this.#counts[at] as number) + 1;
    this.count++;
  }

  /** The smallest millisecond at or under which a share `p` of the latencies fall; NaN for none. */
  percentile(p: number): number {
    const rank = Math.ceil(this.count * p);
    let seen = 0;
    for (let ms = 0; ms < this.#counts.length; ms++) {
      seen += this.#counts[ms] as number;
      if (seen >= rank && seen > 0) return ms;
    }
    return Number.NaN;
  }

  /** The largest latency recorded (0 for none). */
  max(): number {
    for (let ms = this.#counts.length - 1; ms >= 0; ms--) if ((this.#counts[ms] as number) > 0) return ms;
    return 0;
  }
}
