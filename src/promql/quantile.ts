/**
 * Prometheus' quantile (promql/quantile.go): linear interpolation between the closest ranks;
 * φ < 0 gives -Inf, φ > 1 gives +Inf, no values gives NaN.
 */
export function quantile(phi: number, values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  if (phi < 0) return Number.NEGATIVE_INFINITY;
  if (phi > 1) return Number.POSITIVE_INFINITY;
  // Prometheus sorts with NaN first ("less than" everything).
  const sorted = [...values].sort((a, b) => (Number.isNaN(a) ? -1 : Number.isNaN(b) ? 1 : a - b));
  const n = sorted.length;
  const rank = phi * (n - 1);
  const lowerIndex = Math.max(0, Math.floor(rank));
  const upperIndex = Math.min(n - 1, lowerIndex + 1);
  const weight = rank - Math.floor(rank);
  return (sorted[lowerIndex] as number) * (1 - weight) + (sorted[upperIndex] as number) * weight;
}
