import { parseLsn, ReplayLag } from '../database/replay-lag.js';
import { arrays, type Server } from './server.js';
import { METRICS } from './tables.js';

/** A read replica as readiness sees it. */
export interface ReplicaState {
  /** Whether its WAL receiver streams from the primary: a standby cut off from it serves stale reads. */
  streaming: boolean;
  /** How long ago the primary was at a position the standby has not replayed yet; 0: caught up. */
  lagSeconds: number;
}

/**
 * What readiness, the start and the slow-operation log ask of the servers: whether they answer,
 * the replica's state, whether the table exists and holds rows, and the plan of a read. `reads` is
 * the primary itself when there is no replica.
 */
export class Health {
  /** Where the replica's replay is behind the primary's positions, probe by probe (readiness). */
  readonly #replayLag = new ReplayLag();

  constructor(
    private readonly primary: Server,
    private readonly reads: Server,
  ) {}

  /** Whether the primary answers a trivial query within `timeoutMs`, on readiness's own connection. */
  async ping(timeoutMs: number): Promise<void> {
    await this.primary.probe.query('SELECT 1', timeoutMs, 'the database');
  }

  /**
   * The read replica as readiness sees it, on the probe connections: whether its WAL receiver is
   * streaming from the primary, and how far its replay is behind the primary's position
   * (ReplayLag). Undefined without a replica. Fails when either server does not answer within
   * `timeoutMs`, and when the replica is not a standby at all.
   */
  async replicaState(timeoutMs: number): Promise<ReplicaState | undefined> {
    if (this.reads === this.primary) return undefined;
    const [primaryPosition] =
      (await this.primary.probe.query<[position: string]>(
        'SELECT pg_current_wal_flush_lsn()::text',
        timeoutMs,
        'the database',
      )) ?? [];
    if (primaryPosition === undefined) throw new Error('the database gave no WAL position');
    this.#replayLag.primaryAt(parseLsn(primaryPosition), Date.now());
    // Without pg_read_all_stats, pg_stat_wal_receiver shows only the receiver's pid: a receiver
    // that exists then counts as streaming, and the lag tells the rest.
    const [replayed, receiverStatus, receiverPid] =
      (await this.reads.probe.query<[replayed: string | null, status: string | null, pid: number | null]>(
        'SELECT pg_last_wal_replay_lsn()::text, r.status, r.pid FROM (SELECT) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true',
        timeoutMs,
        'the read replica',
      )) ?? [];
    if (replayed == null) throw new Error('the read replica is not a standby (it replays no WAL)');
    return {
      streaming: receiverStatus == null ? receiverPid != null : receiverStatus === 'streaming',
      lagSeconds: this.#replayLag.lagSeconds(parseLsn(replayed), Date.now()),
    };
  }

  /** Whether the metrics table exists, i.e. the migrations were applied. */
  async tableExists(): Promise<boolean> {
    const { rows } = await arrays<[table: string | null]>(
      this.primary,
      'SELECT',
      'SELECT to_regclass($1)::text',
      [METRICS],
      undefined,
    );
    return Boolean(rows[0]?.[0]);
  }

  async isEmpty(): Promise<boolean> {
    const { rows } = await arrays<[exists: boolean]>(
      this.primary,
      'SELECT metrics',
      `SELECT EXISTS (SELECT 1 FROM ${METRICS})`,
      [],
      undefined,
    );
    return !rows[0]?.[0];
  }

  /**
   * The plan PostgreSQL would choose for a read this store ran, for the slow-operation log:
   * EXPLAIN without ANALYZE, so nothing runs again, and never for a write.
   */
  async explain(text: string, values: readonly unknown[]): Promise<unknown> {
    if (!/^\s*(SELECT|WITH)\b/i.test(text) || /\b(INSERT|UPDATE|DELETE)\b/i.test(text)) return undefined;
    const { rows } = await this.reads.pool
      .query<[plan: unknown]>({
        text: `EXPLAIN (FORMAT JSON) ${text}`,
        values: [...values],
        rowMode: 'array',
      })
      .catch(this.reads.classified);
    return rows[0]?.[0];
  }
}
