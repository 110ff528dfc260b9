import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { type Problem, sourceLimitProblem } from '../domain/sample.js';
import type { SourceLabels } from '../domain/source.js';
import { type BatchSource, DEFAULT_SOURCE_ID } from './sample-batch.js';
import type { Server } from './server.js';
import type { StatementRunner } from './statement-runner.js';
import { SOURCES } from './tables.js';

/**
 * Sources whose id and labels a store remembers: a load of a thousand sources looks each up once,
 * and the memory stays the same whatever the number of sources: an entry is a name (at most 256
 * characters) and a digest of the labels, so 10,000 are a few megabytes at most.
 */
const REMEMBERED_SOURCES = 10_000;

/**
 * The key of the advisory lock that writers creating sources take, so the count they check against
 * MAX_SOURCES holds until they commit. (Writers also hold metrics' revision lock by then, which
 * serializes them already; this lock keeps the count right without leaning on that.)
 */
const CREATING_SOURCES_LOCK = 0x6d61_7069_5352; // "mapiSR"

/** A source as remembered: its id, and the digest of its labels canonicalLabels gives. */
interface KnownSource {
  id: number;
  labels: string;
}

/**
 * Labels as one digest, whatever the order of their names: how two sets of labels are compared.
 * A digest, not the labels: 32 labels of 1,024 characters would make an entry 70 KB.
 */
function canonicalLabels(labels: SourceLabels): string {
  const text = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash('sha256').update(text).digest('base64');
}

const FIND = `SELECT id, name, labels FROM ${SOURCES} WHERE name = ANY($1::text[])`;
const RELABEL = `UPDATE ${SOURCES} AS s SET labels = u.labels
  FROM unnest($1::integer[], $2::jsonb[]) AS u(id, labels)
  WHERE s.id = u.id AND s.labels IS DISTINCT FROM u.labels`;
const COUNT = `SELECT count(*)::integer AS count FROM ${SOURCES}`;
/**
 * Makes the sources named, in the order given (ids follow it). A name made by another writer since
 * it was looked up is not returned, and is looked up again.
 */
const CREATE = `INSERT INTO ${SOURCES} (name, labels)
  SELECT name, labels FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS w(name, labels, position)
  ORDER BY position
  ON CONFLICT (name) DO NOTHING
  RETURNING id, name`;

/**
 * DEFAULT_SOURCE names a source other than source 1: the service and the commands refuse to start
 * rather than write the samples of writers naming no source under another source's name.
 */
export class DefaultSourceNameTakenError extends Error {
  override name = 'DefaultSourceNameTakenError';
}

/**
 * The sources of a store's writes: each name a batch gives resolved to its id, made in the
 * writer's transaction when new (refused past MAX_SOURCES, per sample, never dropped silently),
 * and its labels replaced when a sample gives others. Ids and labels read or written are
 * remembered, those of a transaction only once it commits (an id that was rolled back names no
 * source).
 */
export class SourceRegistry {
  readonly #known = new LRUCache<string, KnownSource>({ max: REMEMBERED_SOURCES });

  constructor(
    private readonly primary: Server,
    /** MAX_SOURCES. */
    readonly maxSources: number,
  ) {}

  /** The resolver of one transaction on `client`; call its `committed()` once the transaction has committed. */
  inTransaction(client: pg.ClientBase, observed: StatementRunner): SourceResolver {
    return new SourceResolver(client, observed, this.#known, this.maxSources);
  }

  /**
   * Names source 1 (the samples of writers naming none) `name`, DEFAULT_SOURCE, when it is named
   * otherwise; a source of that name other than source 1 is DefaultSourceNameTakenError. Without a
   * name (DEFAULT_SOURCE unset), source 1 keeps the one it has.
   */
  async nameDefaultSource(name: string | undefined): Promise<void> {
    if (name === undefined) return;
    const rename = `UPDATE ${SOURCES} SET name = $1 WHERE id = ${DEFAULT_SOURCE_ID} AND name <> $1`;
    try {
      const { rowCount } = await this.primary.observed(`UPDATE ${SOURCES}`, rename, [name], () =>
        this.primary.pool.query(rename, [name]),
      );
      if (rowCount) this.#known.clear();
    } catch (error) {
      if ((error as { code?: unknown }).code !== '23505') throw error;
      throw new DefaultSourceNameTakenError(
        `DEFAULT_SOURCE=${name}: another source already has that name, so source ${DEFAULT_SOURCE_ID} ` +
          '(the samples of writers that name no source) cannot take it. Choose another DEFAULT_SOURCE, or ' +
          'leave it unset to keep the current name.',
      );
    }
  }

  /** The number of sources (for /metrics). */
  async count(): Promise<number> {
    const { rows } = await this.primary.observed(`SELECT ${SOURCES}`, COUNT, [], () =>
      this.primary.pool.query<{ count: number }>(COUNT),
    );
    return rows[0]?.count ?? 0;
  }
}

/** What resolving a batch's sources gave: each one's id (0: refused), and why each refused one was. */
export interface ResolvedSources {
  ids: Int32Array;
  refusals: Map<number, Problem>;
}

/**
 * The sources of one transaction's batches. `lockWriters` is called before the first write to
 * `sources`: it takes metrics' writer lock (the revision row's), so that a transaction never holds
 * a source's row (which the sources_seen trigger of the writer holding that lock updates) while
 * it waits for that lock: the two would wait for each other.
 */
export class SourceResolver {
  /** Sources this transaction made or relabelled: remembered only once it commits. */
  readonly #written = new Map<string, KnownSource>();

  constructor(
    private readonly client: pg.ClientBase,
    private readonly observed: StatementRunner,
    private readonly known: LRUCache<string, KnownSource>,
    private readonly maxSources: number,
  ) {}

  /** Each source's id; those to be made past MAX_SOURCES get 0 and a refusal. */
  async resolve(sources: readonly BatchSource[], lockWriters: () => Promise<void>): Promise<ResolvedSources> {
    const ids = new Int32Array(sources.length);
    const refusals = new Map<number, Problem>();
    const unresolved: number[] = [];
    for (const [index, { name, labels }] of sources.entries()) {
      const known = this.#written.get(name) ?? this.known.get(name);
      if (known && (labels === undefined || known.labels === canonicalLabels(labels))) ids[index] = known.id;
      else unresolved.push(index);
    }
    if (unresolved.length > 0) await this.#lookUpOrWrite(sources, unresolved, ids, refusals, lockWriters);
    return { ids, refusals };
  }

  /** The transaction committed: what it wrote is now what every transaction sees. */
  committed(): void {
    for (const [name, source] of this.#written) this.known.set(name, source);
  }

  async #lookUpOrWrite(
    sources: readonly BatchSource[],
    unresolved: readonly number[],
    ids: Int32Array,
    refusals: Map<number, Problem>,
    lockWriters: () => Promise<void>,
  ): Promise<void> {
    const names = unresolved.map((index) => (sources[index] as BatchSource).name);
    const { rows } = await this.observed(`SELECT ${SOURCES}`, FIND, [], () =>
      this.client.query<{ id: number; name: string; labels: SourceLabels }>(FIND, [names]),
    );
    const stored = new Map(
      rows.map((row) => [row.name, { id: row.id, labels: canonicalLabels(row.labels) }]),
    );
    const relabel: { index: number; id: number; labels: string }[] = [];
    const create: number[] = [];
    for (const index of unresolved) {
      const { name, labels } = sources[index] as BatchSource;
      const found = stored.get(name);
      if (!found) {
        create.push(index);
        continue;
      }
      ids[index] = found.id;
      const given = labels === undefined ? found.labels : canonicalLabels(labels);
      if (given === found.labels) {
        // Committed by another transaction, or written by this one (then in #written, unless relabelled since).
        if (!this.#written.has(name)) this.known.set(name, found);
      } else {
        relabel.push({ index, id: found.id, labels: given });
      }
    }
    if (relabel.length === 0 && create.length === 0) return;
    await lockWriters();
    if (relabel.length > 0) await this.#relabel(sources, relabel);
    if (create.length > 0) await this.#create(sources, create, ids, refusals, lockWriters);
  }

  async #relabel(
    sources: readonly BatchSource[],
    relabel: readonly { index: number; id: number; labels: string }[],
  ): Promise<void> {
    const values = [relabel.map((r) => r.id), relabel.map((r) => JSON.stringify(sources[r.index]?.labels))];
    await this.observed(`UPDATE ${SOURCES}`, RELABEL, [], () => this.client.query(RELABEL, values));
    for (const { index, id, labels } of relabel)
      this.#written.set((sources[index] as BatchSource).name, { id, labels });
  }

  async #create(
    sources: readonly BatchSource[],
    create: readonly number[],
    ids: Int32Array,
    refusals: Map<number, Problem>,
    lockWriters: () => Promise<void>,
  ): Promise<void> {
    const lock = `SELECT pg_advisory_xact_lock(${CREATING_SOURCES_LOCK})`;
    await this.observed('SELECT', lock, [], () => this.client.query(lock));
    const { rows: counted } = await this.observed(`SELECT ${SOURCES}`, COUNT, [], () =>
      this.client.query<{ count: number }>(COUNT),
    );
    const room = Math.max(0, this.maxSources - (counted[0]?.count ?? 0));
    const made = create.slice(0, room);
    for (const index of create.slice(room))
      refusals.set(index, sourceLimitProblem((sources[index] as BatchSource).name, this.maxSources));
    if (made.length === 0) return;
    const values = [
      made.map((index) => (sources[index] as BatchSource).name),
      made.map((index) => JSON.stringify(sources[index]?.labels ?? {})),
    ];
    const { rows } = await this.observed(`INSERT ${SOURCES}`, CREATE, [], () =>
      this.client.query<{ id: number; name: string }>(CREATE, values),
    );
    const createdIds = new Map(rows.map((row) => [row.name, row.id]));
    const raced: number[] = [];
    for (const index of made) {
      const { name, labels } = sources[index] as BatchSource;
      const id = createdIds.get(name);
      if (id === undefined) {
        raced.push(index);
        continue;
      }
      ids[index] = id;
      this.#written.set(name, { id, labels: canonicalLabels(labels ?? {}) });
    }
    // Made by another writer between the lookup and the lock: now stored, so found.
    if (raced.length > 0) await this.#lookUpOrWrite(sources, raced, ids, refusals, lockWriters);
  }
}
