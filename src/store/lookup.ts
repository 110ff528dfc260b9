import type { StoredMetric } from '../domain/metric.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { KnownPartitions } from './known-partitions.js';
import { selectMetrics } from './metric-rows.js';
import type { Server } from './server.js';

/** The time span to look for an id in first, from the `known` id ranges; undefined: anywhere. */
function spanOf(known: KnownPartitions, id: bigint): { from: Date; to: Date | undefined } | undefined {
  const ranges = known.ids;
  if (id > known.largestId) {
    const newest = ranges.findLast((range) => range.maxId === known.largestId);
    return newest && { from: newest.from, to: undefined };
  }
  const holding = ranges.filter((range) => range.minId <= id && id <= range.maxId);
  const first = holding[0];
  const last = holding.at(-1);
  return first && last && { from: first.from, to: last.to };
}

/** Samples by id, read on `reads` (the primary, or the standby reads go to). */
export class Lookup {
  constructor(
    private readonly reads: Server,
    private readonly known: KnownPartitions,
  ) {}

  /** The row with this id, or null: findByIds for one id. */
  async findById(id: bigint, scope?: OperationScope): Promise<StoredMetric | null> {
    const [metric] = await this.findByIds([id], scope);
    return metric ?? null;
  }

  /**
   * The rows with these ids, in their order (null where none). `id` has an index in every
   * partition, so `WHERE id = ...` alone probes each of them (about 15 ms at 400 partitions); the
   * store remembers each partition's smallest and largest id (KnownPartitions, refreshed at every
   * maintenance pass) and first looks only in the time span of the partitions whose ids include
   * these, or, for an id newer than any it knows, in the partitions from the newest one it knows
   * onwards. Ids grow with commit order, so that is one partition or two for ids written together.
   * Ids not found there (rows that do not exist, or were back-filled into an old partition since)
   * are looked up in every partition: the answer is always exact, only sometimes slower. Two
   * statements at most, whatever the number of ids.
   */
  async findByIds(ids: readonly bigint[], scope?: OperationScope): Promise<(StoredMetric | null)[]> {
    const found = new Map<bigint, StoredMetric>();
    const read = async (wanted: bigint[], span?: { from: Date; to: Date | undefined }) => {
      const values: unknown[] = [wanted.map(String)];
      let condition = 'id = ANY($1::bigint[])';
      if (span) {
        values.push(span.from);
        condition += ' AND "timestamp" >= $2';
        if (span.to) {
          values.push(span.to);
          condition += ' AND "timestamp" < $3';
        }
      }
      for (const metric of await selectMetrics(this.reads, ` WHERE ${condition}`, values, scope)) {
        found.set(metric.id, metric);
      }
    };
    const distinct = [...new Set(ids)];
    const spans = distinct.map((id) => spanOf(this.known, id));
    if (distinct.length > 0 && spans.every((span) => span !== undefined)) {
      const from = new Date(Math.min(...spans.map((span) => span.from.getTime())));
      const to = spans.some((span) => span.to === undefined)
        ? undefined
        : new Date(Math.max(...spans.map((span) => (span.to as Date).getTime())));
      await read(distinct, { from, to });
    }
    const missing = distinct.filter((id) => !found.has(id));
    if (missing.length > 0) await read(missing);
    return ids.map((id) => found.get(id) ?? null);
  }
}
