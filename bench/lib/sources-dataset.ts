/**
 * The fleets of `--sources`: N sources sampled every `step` seconds over a day, generated in
 * PostgreSQL (generate_series) straight into the partitioned table, its day partition made first,
 * with every trigger on (the rollups and the sources' first and last seen are the real ones). Each
 * source has labels (region, tier) and a load pattern of its own (daily phase, amplitude, base,
 * noise, bursts), and the rows are interleaved as a fleet writes them: each step, one sample of
 * every source.
 *
 * Every value is a hash of (pattern, time), not a random draw: the single-series reference, one
 * source holding the pattern of the fleet's measured source, holds exactly the rows that source
 * holds in the fleet, so the two differ only in the other sources around them.
 *
 * A database is reused while its marker (the dataset and the hash of this SQL) and its row count
 * match, as the bench's own dataset is.
 */
import { createHash } from 'node:crypto';
import { databaseName, databaseUrl, makePartitions, prepareDatabase, withClient } from './dataset.js';

export interface Fleet {
  /** Sources in the fleet (1 for a single-series reference). */
  sources: number;
  stepSeconds: number;
  /** Epoch milliseconds of the first sample. */
  startMs: number;
  /** Seconds of data: 86,400 for the day. */
  seconds: number;
  /**
   * A single-series reference: the one source is source 1 (`default`, as a database written
   * before sources has it) with the pattern of this fleet source (1-based); undefined for the fleet.
   */
  patternOf?: number;
}

/** 2026-02-01T00:00:00Z, a day of its own (the day partition is made for it). */
export const FLEET_START_MS = Date.UTC(2026, 1, 1);

export const samplesPerSource = (fleet: Fleet) => fleet.seconds / fleet.stepSeconds;
export const fleetRows = (fleet: Fleet) => fleet.sources * samplesPerSource(fleet);

/** `host-0001`..., as scripts/generate-metrics.ts --sources names them. */
export function sourceName(index: number, count: number): string {
  return `host-${String(index).padStart(Math.max(4, String(count).length), '0')}`;
}

/** The fleet source whose pages, summaries and series the per-source workloads ask for: the middle one. */
export const measuredSource = (count: number) => Math.ceil(count / 2);

/** The single-series reference of `fleet`: its measured source's rows alone, in source 1. */
export function singleSeriesOf(fleet: Fleet): Fleet {
  return { ...fleet, sources: 1, patternOf: measuredSource(fleet.sources) };
}

export function fleetDatabase(benchUrl: string, fleet: Fleet): string {
  const name =
    fleet.patternOf === undefined
      ? `metrics_sources_${fleet.sources}x${fleet.stepSeconds}s_${fleet.seconds / 3600}h`
      : `metrics_sources_single_${fleet.patternOf}_${fleet.stepSeconds}s_${fleet.seconds / 3600}h`;
  return databaseUrl(benchUrl, name);
}

// A uniform number in [0, 1) from (a, b, k): PostgreSQL's own 64-bit integer hash, the same in
// every database of the server. In pg_temp: the benchmark's schema stays the service's.
const HASH_FUNCTION = `
CREATE FUNCTION pg_temp.bench_u(a bigint, b bigint, k integer) RETURNS float8
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN (hashint8(a * 1000003 + b * 64 + k) & 2147483647)::float8 / 2147483648`;

// Each source's pattern, from its pattern number: the daily shape's phase (hours), amplitude and
// base, the noise's scale, tasks per unit of load, and how often a burst starts.
const PATTERNS = `
CREATE TEMP TABLE bench_patterns AS
SELECT source_id, pattern,
       -6 + 12 * pg_temp.bench_u(pattern, 0, 1) AS phase_hours,
       0.3 + 1.2 * pg_temp.bench_u(pattern, 0, 2) AS amplitude,
       0.1 + 0.6 * pg_temp.bench_u(pattern, 0, 3) AS base,
       0.5 + 1.5 * pg_temp.bench_u(pattern, 0, 4) AS noise,
       20 + 40 * pg_temp.bench_u(pattern, 0, 5) AS tasks_per_load,
       1800 / ((0.5 + 2.5 * pg_temp.bench_u(pattern, 0, 6)) * 7200) AS burst_chance
  FROM unnest($1::int[], $2::int[]) AS s(source_id, pattern)`;

// The samples of [$1, $2) epoch seconds, every $3 seconds, of every source, in time then source
// order as a fleet writes them. A sample's load: the source's base, its daily swing (quiet at
// 03:00 shifted by its phase), a slow wave and noise, and a burst that may start in each half hour
// and decays within it; its concurrency follows the load. Hashes of (pattern, time) make every
// value, so a pattern gives the same rows in any database.
const SAMPLES = `
INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
SELECT source_id, to_timestamp(t), load::real,
       greatest(0, round(load * tasks_per_load + 6 * gauss2))::integer
  FROM (
    SELECT p.source_id, g.t, p.tasks_per_load,
           (pg_temp.bench_u(p.pattern, g.t, 24) + pg_temp.bench_u(p.pattern, g.t, 25)
              + pg_temp.bench_u(p.pattern, g.t, 26) - 1.5) * 2 AS gauss2,
           greatest(0,
             p.base
             + 2.6 * p.amplitude * power(0.5 - 0.5 * cos(2 * pi() * (((g.t % 86400) / 3600.0) - 3 - p.phase_hours) / 24), 1.5)
             + p.noise * 0.3 * sin(g.t / (1800 + 3600 * pg_temp.bench_u(p.pattern, 0, 7)) + 6.3 * pg_temp.bench_u(p.pattern, 0, 8))
             + p.noise * 0.08 * (pg_temp.bench_u(p.pattern, g.t, 21) + pg_temp.bench_u(p.pattern, g.t, 22)
                                 + pg_temp.bench_u(p.pattern, g.t, 23) - 1.5) * 2
             + CASE WHEN pg_temp.bench_u(p.pattern, g.block, 11) < p.burst_chance
                     AND g.t >= g.block * 1800 + 1800 * pg_temp.bench_u(p.pattern, g.block, 12)
                    THEN (1.5 + 3 * pg_temp.bench_u(p.pattern, g.block, 13))
                         * exp(-(g.t - g.block * 1800 - 1800 * pg_temp.bench_u(p.pattern, g.block, 12))
                               / (60 + 600 * pg_temp.bench_u(p.pattern, g.block, 14)))
                    ELSE 0 END) AS load
      FROM (SELECT t, t / 1800 AS block FROM generate_series($1::bigint, $2::bigint - 1, $3::bigint) AS t) AS g
     CROSS JOIN bench_patterns AS p
  ) AS s
 ORDER BY t, source_id`;

// The fleet's sources, ids 2 to N + 1 in name order (source 1 is default), with their labels.
const SOURCES = `
INSERT INTO sources (name, labels)
SELECT name, jsonb_build_object(
         'region', (ARRAY['eu-west', 'us-east', 'ap-south'])[1 + floor(3 * pg_temp.bench_u(i, 0, 9))::int],
         'tier', (ARRAY['web', 'api', 'worker', 'db'])[1 + floor(4 * pg_temp.bench_u(i, 0, 10))::int])
  FROM unnest($1::text[]) WITH ORDINALITY AS s(name, i)
 ORDER BY i`;

/** Rows per INSERT: a statement's rows pass through the rollup triggers' transition table at once. */
const ROWS_PER_STATEMENT = 360_000;

const MARKER_TABLE = 'bench_dataset';

function markerKey(fleet: Fleet): string {
  const sql = createHash('sha256')
    .update([HASH_FUNCTION, PATTERNS, SAMPLES, SOURCES].join('\n'))
    .digest('hex')
    .slice(0, 12);
  return `sources=${fleet.sources},step=${fleet.stepSeconds},start=${fleet.startMs},seconds=${fleet.seconds},pattern=${fleet.patternOf ?? 'all'},sql=${sql}`;
}

async function holds(url: string, fleet: Fleet): Promise<boolean> {
  return withClient(url, async (client) => {
    const marker = await client.query<{ present: boolean }>(
      `SELECT to_regclass('${MARKER_TABLE}') IS NOT NULL AS present`,
    );
    if (!marker.rows[0]?.present) return false;
    const keys = await client.query<{ key: string }>(`SELECT key FROM ${MARKER_TABLE}`);
    const count = await client.query<{ count: string }>('SELECT count(*) AS count FROM metrics');
    return (
      keys.rows.length === 1 &&
      keys.rows[0]?.key === markerKey(fleet) &&
      Number(count.rows[0]?.count) === fleetRows(fleet)
    );
  });
}

export interface FleetState {
  url: string;
  database: string;
  state: 'reused' | 'loaded';
  /** Seconds the load took, when this run made it. */
  loadSeconds?: number;
}

/** Makes (or reuses) the database of `fleet`; ends with VACUUM (ANALYZE) either way. */
export async function ensureFleet(
  benchUrl: string,
  fleet: Fleet,
  log: (line: string) => void,
): Promise<FleetState> {
  if (fleet.seconds % fleet.stepSeconds !== 0 || 3600 % fleet.stepSeconds !== 0) {
    throw new Error(`a step of ${fleet.stepSeconds} s does not divide an hour`);
  }
  const url = fleetDatabase(benchUrl, fleet);
  const database = databaseName(url);
  await prepareDatabase(url, false);
  if (await holds(url, fleet)) {
    await withClient(url, (client) => client.query('VACUUM (ANALYZE)'));
    return { url, database, state: 'reused' };
  }
  const rows = fleetRows(fleet);
  log(
    `generating ${rows.toLocaleString('en')} samples of ${fleet.sources.toLocaleString('en')} source(s) every ${fleet.stepSeconds} s into ${database}`,
  );
  const started = performance.now();
  await prepareDatabase(url, true);
  const endMs = fleet.startMs + fleet.seconds * 1000;
  await makePartitions(url, new Date(fleet.startMs), new Date(endMs));
  await withClient(url, async (client) => {
    // A statement's rows are sorted, and grouped by the rollup triggers, in memory rather than on disk.
    await client.query(`SET work_mem = '256MB'`);
    await client.query(HASH_FUNCTION);
    let ids: number[];
    let patterns: number[];
    if (fleet.patternOf === undefined) {
      const names = Array.from({ length: fleet.sources }, (_, i) => sourceName(i + 1, fleet.sources));
      await client.query(SOURCES, [names]);
      ids = names.map((_, i) => i + 2);
      patterns = names.map((_, i) => i + 1);
    } else {
      ids = [1];
      patterns = [fleet.patternOf];
    }
    await client.query(PATTERNS, [ids, patterns]);
    const stepsPerStatement = Math.max(1, Math.floor(ROWS_PER_STATEMENT / fleet.sources));
    const firstSecond = fleet.startMs / 1000;
    const steps = samplesPerSource(fleet);
    for (let step = 0; step < steps; step += stepsPerStatement) {
      const from = firstSecond + step * fleet.stepSeconds;
      const to = firstSecond + Math.min(steps, step + stepsPerStatement) * fleet.stepSeconds;
      await client.query(SAMPLES, [from, to, fleet.stepSeconds]);
    }
    const count = await client.query<{ count: string }>('SELECT count(*) AS count FROM metrics');
    if (Number(count.rows[0]?.count) !== rows) {
      throw new Error(`${database} holds ${count.rows[0]?.count} samples; expected ${rows}`);
    }
    await client.query(`CREATE TABLE ${MARKER_TABLE} (key text NOT NULL)`);
    await client.query(`INSERT INTO ${MARKER_TABLE} (key) VALUES ($1)`, [markerKey(fleet)]);
    // Hint bits and the visibility map set now, so the first workload does not pay for them.
    await client.query('VACUUM (ANALYZE)');
  });
  const loadSeconds = (performance.now() - started) / 1000;
  log(`  ${loadSeconds.toFixed(0)} s (${Math.round(rows / loadSeconds).toLocaleString('en')} rows/s)`);
  return { url, database, state: 'loaded', loadSeconds };
}
