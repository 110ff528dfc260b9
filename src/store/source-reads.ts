import type { Page, SourcePageRequest, SourcePosition, SourceSearch } from '../domain/paging.js';
import type { StoredSource } from '../domain/source.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';
import { arrays, type Server } from './server.js';
import { filterError, sourcesWhere } from './source-filter.js';
import { SOURCES } from './tables.js';

/** The columns of a stored source, selected in StoredSource's order. */
const SOURCE_COLUMNS = 'id, name, labels, first_seen, last_seen';

type SourceRow = [
  id: number,
  name: string,
  labels: Record<string, string>,
  firstSeen: Date | null,
  lastSeen: Date | null,
];

function storedSource([id, name, labels, firstSeen, lastSeen]: SourceRow): StoredSource {
  return { id, name, labels, firstSeen, lastSeen };
}

/** Collations that order text by code point, as `name`'s index then does (the database's own). */
const CODE_POINT_ORDER = /^(C|POSIX|C\.utf-?8)$/i;
const LARGEST_CODE_POINT = 0x10ffff;

/**
 * The least string after every string that starts with `prefix`, in code point order: the prefix
 * with its last code point one higher (past the surrogates, which text never holds); undefined
 * when every code point of the prefix is the largest.
 */
export function afterPrefix(prefix: string): string | undefined {
  const points = [...prefix].map((character) => character.codePointAt(0) as number);
  while (points.length > 0 && points.at(-1) === LARGEST_CODE_POINT) points.pop();
  const last = points.pop();
  if (last === undefined) return undefined;
  return String.fromCodePoint(...points, last + 1 === 0xd800 ? 0xe000 : last + 1);
}

/**
 * The names that start with `prefix`. starts_with is the exact condition; the lower bound lets the
 * name index skip the names before the prefix (in every collation a string sorts at or after its
 * prefix). When names are in code point order, the names with the prefix are those up to
 * afterPrefix too, and with both bounds the planner reads only them (at 100,000 sources 0.8 ms;
 * starts_with alone it estimates from no statistics, and sorted the whole table: 22 ms).
 */
function namePrefixCondition(prefix: string, codePointOrder: boolean): Prisma.Sql {
  const after = codePointOrder ? afterPrefix(prefix) : undefined;
  return after === undefined
    ? Prisma.sql`name >= ${prefix}::text AND starts_with(name, ${prefix}::text)`
    : Prisma.sql`name >= ${prefix}::text AND name < ${after}::text`;
}

/**
 * The order of last seen, most recent first, in two stretches: the sources seen (last_seen DESC,
 * id DESC), then those never seen (id DESC). Each is read along the index on last_seen.
 */
type SeenStretch = 'seen' | 'unseen';

/** Reads of `sources`, on `reads` (the primary, or the standby reads go to). */
export class SourceReads {
  /** Whether the database orders names by code point, asked once. */
  #codePointOrder: Promise<boolean> | undefined;

  constructor(private readonly reads: Server) {}

  /** The conditions of a search: its name prefix and label matchers. */
  async #search(
    { namePrefix, labels }: SourceSearch,
    scope: OperationScope | undefined,
  ): Promise<Prisma.Sql[]> {
    const conditions = labels && labels.length > 0 ? [sourcesWhere({ labels })] : [];
    if (!namePrefix) return conditions;
    this.#codePointOrder ??= arrays<[collation: string]>(
      this.reads,
      'SELECT',
      'SELECT datcollate FROM pg_database WHERE datname = current_database()',
      [],
      scope,
    ).then(
      ({ rows }) => CODE_POINT_ORDER.test(rows[0]?.[0] ?? ''),
      (error: unknown) => {
        this.#codePointOrder = undefined;
        throw error;
      },
    );
    return [namePrefixCondition(namePrefix, await this.#codePointOrder), ...conditions];
  }

  async #select(where: Prisma.Sql, rest: string, scope: OperationScope | undefined): Promise<StoredSource[]> {
    const { rows } = await arrays<SourceRow>(
      this.reads,
      'SELECT sources',
      `SELECT ${SOURCE_COLUMNS} FROM ${SOURCES} WHERE ${where.text}${rest}`,
      where.values,
      scope,
      fastTimestamptzTypes,
    ).catch((error: unknown) => {
      throw filterError(error);
    });
    return rows.map(storedSource);
  }

  /** The sources with these ids (one statement), by id; ids no source has are absent. */
  async byIds(ids: readonly number[], scope?: OperationScope): Promise<Map<number, StoredSource>> {
    const found = new Map<number, StoredSource>();
    if (ids.length === 0) return found;
    for (const source of await this.#select(Prisma.sql`id = ANY(${ids}::int[])`, '', scope)) {
      found.set(source.id, source);
    }
    return found;
  }

  /** The source of this name, or null. */
  async byName(name: string, scope?: OperationScope): Promise<StoredSource | null> {
    const [source] = await this.#select(Prisma.sql`name = ${name}::text`, '', scope);
    return source ?? null;
  }

  /** The sources a search finds. */
  async count(search: SourceSearch, scope?: OperationScope): Promise<number> {
    const conditions = await this.#search(search, scope);
    const where = conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
    const { rows } = await arrays<[count: number]>(
      this.reads,
      'SELECT sources',
      `SELECT count(*)::int FROM ${SOURCES} WHERE ${where.text}`,
      where.values,
      scope,
    ).catch((error: unknown) => {
      throw filterError(error);
    });
    return rows[0]?.[0] ?? 0;
  }

  /**
   * One page of sources by keyset, the page size plus one row telling whether there are more. By
   * name, one range scan of the unique index on name; by last seen, one of the index on last_seen
   * for the sources seen, and only once they are all passed, one for those never seen.
   */
  async page(request: SourcePageRequest, scope?: OperationScope): Promise<Page<StoredSource>> {
    const take = request.size + 1;
    const filter = await this.#search(request, scope);
    const forward = !request.fromEnd;
    const rows: StoredSource[] = [];
    if (request.order === 'name') {
      const conditions = [...filter];
      const after = request.after?.order === 'name' ? request.after.name : undefined;
      const before = request.before?.order === 'name' ? request.before.name : undefined;
      if (after !== undefined) conditions.push(Prisma.sql`name > ${after}::text`);
      if (before !== undefined) conditions.push(Prisma.sql`name < ${before}::text`);
      const where = conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
      rows.push(
        ...(await this.#select(where, ` ORDER BY name ${forward ? 'ASC' : 'DESC'} LIMIT ${take}`, scope)),
      );
    } else {
      const stretches: SeenStretch[] = forward ? ['seen', 'unseen'] : ['unseen', 'seen'];
      for (const stretch of stretches) {
        const conditions = this.#seenConditions(stretch, request.after, request.before);
        if (!conditions) continue;
        const where = Prisma.join([...filter, ...conditions], ' AND ');
        const descending = forward ? 'DESC' : 'ASC';
        const order = stretch === 'seen' ? `last_seen ${descending}, id ${descending}` : `id ${descending}`;
        rows.push(...(await this.#select(where, ` ORDER BY ${order} LIMIT ${take - rows.length}`, scope)));
        if (rows.length >= take) break;
      }
    }
    const hasMore = rows.length > request.size;
    const page = rows.slice(0, request.size);
    if (request.fromEnd) page.reverse();
    return { rows: page, hasMore };
  }

  /**
   * The conditions that keep a stretch of the last-seen order to the sources after `after` and
   * before `before`; undefined when the stretch lies wholly outside them.
   */
  #seenConditions(
    stretch: SeenStretch,
    after: SourcePosition | undefined,
    before: SourcePosition | undefined,
  ): Prisma.Sql[] | undefined {
    const conditions: Prisma.Sql[] = [
      stretch === 'seen' ? Prisma.sql`last_seen IS NOT NULL` : Prisma.sql`last_seen IS NULL`,
    ];
    // Later in the order: seen less recently, or never; then a smaller id.
    for (const [position, later] of [
      [after, true],
      [before, false],
    ] as const) {
      if (position?.order !== 'lastSeen') continue;
      const { lastSeen, id } = position;
      if (lastSeen === null) {
        // Every seen source comes before a never-seen one.
        if (stretch === 'seen') {
          if (later) return undefined;
          continue;
        }
        conditions.push(later ? Prisma.sql`id < ${id}::int` : Prisma.sql`id > ${id}::int`);
      } else if (stretch === 'unseen') {
        if (!later) return undefined;
      } else {
        conditions.push(
          later
            ? Prisma.sql`last_seen <= ${lastSeen} AND (last_seen, id) < (${lastSeen}, ${id}::int)`
            : Prisma.sql`last_seen >= ${lastSeen} AND (last_seen, id) > (${lastSeen}, ${id}::int)`,
        );
      }
    }
    return conditions;
  }
}
