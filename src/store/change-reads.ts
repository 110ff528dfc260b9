import type { AnnouncedRows, StoredMetric } from '../domain/metric.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { selectMetrics } from './metric-rows.js';
import { arrays, type Server } from './server.js';
import { METRICS } from './tables.js';

/**
 * The change feed's reads (live/change-feed.ts), on the primary, where its notifications come
 * from: a standby may not have replayed yet what one announced.
 */
export class ChangeReads {
  constructor(private readonly primary: Server) {}

  /**
   * Samples inserted after the one with id `afterId`, in id order, which is the order their
   * transactions committed in (see live/change-feed.ts); with `start`, only those taken from then on.
   */
  addedSince(afterId: bigint, limit: number, start?: Date, scope?: OperationScope): Promise<StoredMetric[]> {
    const values: unknown[] = [afterId.toString(), limit];
    if (start) values.push(start);
    return selectMetrics(
      this.primary,
      ` WHERE id > $1${start ? ' AND "timestamp" >= $3' : ''} ORDER BY id LIMIT $2`,
      values,
      scope,
    );
  }

  /**
   * addedSince() narrowed to what notifications announced: ids up to `announced.lastId`, timestamps
   * within [`announced.from`, `announced.to`]. The time bounds let PostgreSQL read only the
   * partitions those writes touched; `id > $1` alone opens every partition's id index.
   */
  announcedSince(afterId: bigint, announced: AnnouncedRows, limit: number): Promise<StoredMetric[]> {
    return selectMetrics(
      this.primary,
      ' WHERE id > $1 AND id <= $2 AND "timestamp" >= $3 AND "timestamp" <= $4 ORDER BY id LIMIT $5',
      [afterId.toString(), announced.lastId.toString(), announced.from, announced.to, limit],
      undefined,
    );
  }

  /** The largest id stored, 0 for an empty table: where "from now on" begins. */
  async lastId(): Promise<bigint> {
    const { rows } = await arrays<[id: string]>(
      this.primary,
      'SELECT metrics',
      `SELECT coalesce(max(id), 0)::text FROM ${METRICS}`,
      [],
      undefined,
    );
    return BigInt(rows[0]?.[0] ?? 0);
  }
}
