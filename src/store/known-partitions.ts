import type { MetricPartitions, PartitionIds } from './metric-partitions.js';

/**
 * What a store remembers of the partitions of `metrics`, as of the last refresh (every maintenance
 * pass): lookups by id (lookup.ts) and pages (pages.ts) plan fewer partitions with it, summaries
 * read whole partitions by name (aggregates.ts). Answers stay exact whatever partitions exist by
 * now; what is remembered only decides how much each statement plans and reads.
 */
export class KnownPartitions {
  /** Each partition's span and smallest and largest id, in time order. */
  ids: PartitionIds[] = [];
  /** The partitions' starts but the first, ascending (see pageSegments). */
  cuts: number[] = [];
  /** The largest id of any partition's rows. */
  largestId = 0n;

  /** Reads the partitions and each one's smallest and largest id again (two index probes a partition). */
  async refresh(partitions: MetricPartitions): Promise<void> {
    const list = await partitions.list();
    const ids = await partitions.idRanges(list);
    let largest = 0n;
    for (const range of ids) if (range.maxId > largest) largest = range.maxId;
    this.ids = ids;
    this.largestId = largest;
    this.cuts = list.slice(1).map((partition) => partition.from.getTime());
  }
}
