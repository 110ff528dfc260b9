/** A WAL position (`16/B374D848`) as a number that orders as positions do. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  if (high === undefined || low === undefined) throw new Error(`not a WAL position: ${text.slice(0, 40)}`);
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/** Primary positions remembered at most; past it the oldest and the newest are kept, so lag only grows coarser. */
const MAX_POSITIONS = 256;

/**
 * How far a standby's replay is behind its primary, in seconds of this process's clock: how long
 * ago the primary was first seen at a position the standby has still not replayed, 0 when it has
 * replayed every position seen. The primary's position is read at each probe (its flushed WAL,
 * what a standby can receive), so the measure is as fine as the probes are frequent.
 *
 * Why not `now() - pg_last_xact_replay_timestamp()` on the standby, or 0 when its received WAL
 * equals its replayed WAL: a standby cut off from its primary has replayed all it received, and
 * reports 0 while its reads go stale; and a last transaction's age is hours on a primary that
 * rarely writes, however current the standby is. The primary's own position says both.
 */
export class ReplayLag {
  /** Ascending positions of the primary not yet replayed, each with when it was first seen. */
  readonly #positions: { lsn: bigint; seenAt: number }[] = [];

  /** The primary was at `lsn` at `seenAt` (ms). */
  primaryAt(lsn: bigint, seenAt: number): void {
    const last = this.#positions.at(-1);
    if (last && last.lsn >= lsn) return;
    if (this.#positions.length >= MAX_POSITIONS) this.#positions.splice(1, 1);
    this.#positions.push({ lsn, seenAt });
  }

  /** Seconds the standby, which has replayed up to `replayed`, is behind at `now` (ms). */
  lagSeconds(replayed: bigint, now: number): number {
    while (this.#positions.length > 0 && (this.#positions[0]?.lsn ?? 0n) <= replayed) this.#positions.shift();
    const oldest = this.#positions[0];
    return oldest ? Math.max(0, now - oldest.seenAt) / 1000 : 0;
  }
}
