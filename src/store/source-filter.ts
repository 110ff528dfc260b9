import { LRUCache } from 'lru-cache';
import { InvalidSourceFilterError, type LabelMatcher, type SourceFilter } from '../domain/source.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { arrays, type Server } from './server.js';
import { SOURCES } from './tables.js';

/**
 * The sources a question covers: every source, or those ids (ascending, possibly none). A filter
 * is resolved to ids first, in one small statement on `sources`, so that the question itself is
 * planned with constants: a page of one source then walks the (source_id, timestamp) index in
 * order, which a join or a subquery would not let the planner do.
 */
export type SourceSelection =
  | { readonly all: true }
  | { readonly all: false; readonly ids: readonly number[] };

export const ALL_SOURCES: SourceSelection = { all: true };

/** PostgreSQL's SQLSTATE for a regular expression it cannot compile. */
const INVALID_REGULAR_EXPRESSION = '2201B';

/** The condition a selection puts on `column` (an integer source id). */
export function sourceCondition(selection: SourceSelection, column = 'source_id'): Prisma.Sql {
  if (selection.all) return Prisma.sql`true`;
  const name = Prisma.raw(column);
  const [only, ...rest] = selection.ids;
  if (only === undefined) return Prisma.sql`false`;
  // One id as an equality: the planner then reads that source's index range in timestamp order.
  if (rest.length === 0) return Prisma.sql`${name} = ${only}::int`;
  return Prisma.sql`${name} = ANY(${selection.ids}::int[])`;
}

/**
 * A matcher's comparison of `actual` (an expression of text): a regular expression matches the
 * whole value, as Prometheus' matchers do.
 */
export function matchCondition(
  actual: Prisma.Sql,
  operator: LabelMatcher['operator'],
  value: string,
): Prisma.Sql {
  switch (operator) {
    case '=':
      return Prisma.sql`${actual} = ${value}::text`;
    case '!=':
      return Prisma.sql`${actual} <> ${value}::text`;
    case '=~':
    case '!~': {
      // RE2's leading flags, such as Grafana variables' (?i): PostgreSQL refuses its own embedded
      // options inside the anchoring group. `i` is its case-insensitive operator; `s` is its
      // default (. matches a newline), and `m` changes nothing in a matcher anchored whole.
      const flags = LEADING_FLAGS.exec(value)?.[1] ?? '';
      const insensitive = flags.includes('i');
      const pattern = value.slice(flags === '' ? 0 : flags.length + 3);
      const match = Prisma.raw(`${operator === '=~' ? '~' : '!~'}${insensitive ? '*' : ''}`);
      return Prisma.sql`(${compiles(pattern)} AND ${actual} ${match} ${anchored(pattern)})`;
    }
  }
}

const LEADING_FLAGS = /^\(\?([ims]+)\)/;

/** A label matcher as a condition on `sources.labels`: a missing label is the empty string. */
function labelCondition({ name, operator, value }: LabelMatcher): Prisma.Sql {
  return matchCondition(Prisma.sql`coalesce(labels ->> ${name}::text, '')`, operator, value);
}

/** The expression matching a whole value, as Prometheus anchors its matchers. */
function anchored(value: string): Prisma.Sql {
  return Prisma.sql`('^(?:' || ${value}::text || ')$')`;
}

/**
 * True when the expression compiles on its own, an error (invalid_regular_expression) when not: an
 * unbalanced `web)|(.*` would otherwise close the anchoring group and match every value.
 */
function compiles(value: string): Prisma.Sql {
  return Prisma.sql`('' ~ ${value}::text) IS NOT NULL`;
}

/** The condition a filter puts on `sources`; `true` when it names nothing. */
export function sourcesWhere(filter: SourceFilter): Prisma.Sql {
  const conditions = [
    ...(filter.names !== undefined ? [Prisma.sql`name = ANY(${filter.names}::text[])`] : []),
    ...(filter.labels ?? []).map(labelCondition),
  ];
  return conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
}

/** Whether a filter selects anything narrower than every source. */
export function isFiltered(filter: SourceFilter | undefined): filter is SourceFilter {
  return filter !== undefined && (filter.names !== undefined || (filter.labels?.length ?? 0) > 0);
}

/**
 * Resolves a filter to the ids of its sources, on `reads`. A regular expression PostgreSQL
 * refuses is the client's mistake (InvalidSourceFilterError), not the database's. A filter of
 * names alone is answered from `known` where it holds every name (see SourceIdsByName).
 */
export async function selectSources(
  reads: Server,
  filter: SourceFilter | undefined,
  scope?: OperationScope,
  known?: SourceIdsByName,
): Promise<SourceSelection> {
  if (!isFiltered(filter)) return ALL_SOURCES;
  const names = filter.labels?.length ? undefined : filter.names;
  const remembered = names && known?.idsOf(names);
  if (remembered) return { all: false, ids: remembered };
  if (names && known) return { all: false, ids: await known.lookUp(reads, names, scope) };
  const where = sourcesWhere(filter);
  try {
    const { rows } = await arrays<[ids: number[]]>(
      reads,
      'SELECT sources',
      `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM ${SOURCES} WHERE ${where.text}`,
      where.values,
      scope,
    );
    return { all: false, ids: rows[0]?.[0] ?? [] };
  } catch (error) {
    throw filterError(error);
  }
}

/**
 * The error a statement evaluating a filter failed with, or the client's mistake it is: a regular
 * expression PostgreSQL refused to compile is InvalidSourceFilterError, naming `labels`.
 */
export function filterError(error: unknown): unknown {
  return (error as { code?: unknown }).code === INVALID_REGULAR_EXPRESSION
    ? new InvalidSourceFilterError('labels', (error as Error).message)
    : error;
}

/**
 * How long a read remembers a source's id by its name. The service never renames a source but
 * source 1, at a start with another DEFAULT_SOURCE, and never deletes one; a name changed by hand
 * resolves to its old id for at most this long.
 */
const NAME_REMEMBERED_MS = 10_000;

/** The most names remembered: each a name of at most 256 characters and an id, a few MB at most. */
const REMEMBERED_NAMES = 10_000;

/**
 * Ids of sources by name, remembered for the filters of reads: a question about one source by name
 * then costs no statement on `sources` before its own (a page of 100 of one source is about three
 * tenths of a millisecond of PostgreSQL's time; the lookup added half as much again). A name no source
 * has is not remembered: the source may be made by the next write.
 */
export class SourceIdsByName {
  readonly #ids = new LRUCache<string, number>({ max: REMEMBERED_NAMES, ttl: NAME_REMEMBERED_MS });

  /** The ids of `names`, ascending and distinct, when every one is remembered. */
  idsOf(names: readonly string[]): number[] | undefined {
    const ids: number[] = [];
    for (const name of names) {
      const id = this.#ids.get(name);
      if (id === undefined) return undefined;
      ids.push(id);
    }
    return ascendingDistinct(ids);
  }

  /** The ids of `names` (those of sources that exist), ascending, read on `reads` and remembered. */
  async lookUp(reads: Server, names: readonly string[], scope?: OperationScope): Promise<number[]> {
    const { rows } = await arrays<[id: number, name: string]>(
      reads,
      'SELECT sources',
      `SELECT id, name FROM ${SOURCES} WHERE name = ANY($1::text[])`,
      [names],
      scope,
    );
    for (const [id, name] of rows) this.#ids.set(name, id);
    return ascendingDistinct(rows.map(([id]) => id));
  }
}

function ascendingDistinct(ids: number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
