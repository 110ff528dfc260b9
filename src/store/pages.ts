import type { StoredMetric } from '../domain/metric.js';
import type { Page, PagePosition, PageRequest, SortDirection } from '../domain/paging.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { KnownPartitions } from './known-partitions.js';
import { METRIC_COLUMNS, selectMetrics } from './metric-rows.js';
import type { Server } from './server.js';
import type { SourceSelection } from './source-filter.js';
import { METRICS } from './tables.js';

/** A bound on "timestamp" for the keyset page's WHERE clause. */
type Bound = readonly ['>=' | '>' | '<' | '<=', Date];

/**
 * The most sources a page of several reads one by one, each along its own (source_id, timestamp)
 * index and merged: at most this many times the page's rows, however many other sources there
 * are. More sources are read along the (timestamp, source_id) index, skipping the others' rows.
 * Of 1,000 sources a day at 10 s, a page of 100: 2 sources one by one 1.2 ms, along the shared
 * index 24 ms; 16, 2.4 and 1.7 ms; 100, 33 and 2.9 ms.
 */
const SOURCES_READ_ONE_BY_ONE = 16;

/**
 * What a page asks of its rows besides their time bounds: of which sources, and, for a page over
 * several sources, the positions rows must come after (`>`) or before (`<`) in (timestamp,
 * source_id) order. A page of one source is ordered by time alone, and its positions are bounds
 * on the timestamp (positionBounds).
 */
interface Keyset {
  sources: SourceSelection;
  positions: (readonly ['>' | '<', PagePosition])[];
}

/**
 * What follows `SELECT ... FROM` in a keyset page: rows within `bounds` and the keyset's positions,
 * of its sources, in `direction`, at most `take`. Cursors are more bounds, so Postgres answers
 * every page, however deep, with range scans of an index: of (source_id, timestamp) for one
 * source, or for each of a few; else of (timestamp, source_id).
 */
function keysetPageStatement(
  bounds: readonly Bound[],
  { sources, positions }: Keyset,
  direction: SortDirection,
  take: number,
): { from: string; rest: string; values: unknown[] } {
  const values: unknown[] = [take];
  const parameter = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  const timeBounds = () => bounds.map(([operator, value]) => `"timestamp" ${operator} ${parameter(value)}`);
  const order = direction === 'asc' ? 'ASC' : 'DESC';
  const where = (all: string[]) => (all.length > 0 ? ` WHERE ${all.join(' AND ')}` : '');
  if (!sources.all && sources.ids.length === 1) {
    const only = [`source_id = ${parameter(sources.ids[0])}::int`, ...timeBounds()];
    return { from: METRICS, rest: `${where(only)} ORDER BY "timestamp" ${order} LIMIT $1`, values };
  }
  const conditions = timeBounds();
  conditions.push(
    ...positions.map(
      ([operator, { timestamp, sourceId }]) =>
        `("timestamp", source_id) ${operator} (${parameter(timestamp)}, ${parameter(sourceId)}::int)`,
    ),
  );
  const byTimeAndSource = ` ORDER BY "timestamp" ${order}, source_id ${order} LIMIT $1`;
  if (sources.all) return { from: METRICS, rest: `${where(conditions)}${byTimeAndSource}`, values };
  const ids = parameter(sources.ids);
  if (sources.ids.length > SOURCES_READ_ONE_BY_ONE) {
    const several = [`source_id = ANY(${ids}::int[])`, ...conditions];
    return { from: METRICS, rest: `${where(several)}${byTimeAndSource}`, values };
  }
  // Each source's first rows along its own index, merged: no other source's row is read.
  const each = [`source_id = selected_id`, ...conditions];
  return {
    from:
      `unnest(${ids}::int[]) AS selected(selected_id) CROSS JOIN LATERAL (SELECT ${METRIC_COLUMNS} FROM ${METRICS}` +
      `${where(each)} ORDER BY "timestamp" ${order} LIMIT $1) AS page`,
    rest: byTimeAndSource,
    values,
  };
}

const boundsBetween = (from: number, to: number): Bound[] => [
  ...(from > Number.NEGATIVE_INFINITY ? [['>=', new Date(from)] as const] : []),
  ...(to < Number.POSITIVE_INFINITY ? [['<', new Date(to)] as const] : []),
];

/**
 * The statements a page is read with, as more bounds for each, in the page's order. On a table of
 * hundreds of partitions, one `ORDER BY "timestamp" LIMIT n` plans every partition the bounds
 * leave (~12 ms at 400) and opens an index scan in each under a Merge Append (~10 ms more): a
 * default partition rules out the planner's ordered scan of partitions. Cut at the partitions'
 * starts (`cuts`, ascending), the page is read a stretch at a time instead: the partition that
 * holds the page's first row, then the next two, four, and so on until the page is full. Each
 * statement is bounded in time only, so the rows are exact whatever partitions exist by now; the
 * cuts only decide how few partitions each statement plans. No cuts: one statement.
 */
export function pageSegments(
  bounds: readonly Bound[],
  direction: SortDirection,
  cuts: readonly number[],
): Bound[][] {
  let lowest = Number.NEGATIVE_INFINITY;
  let highest = Number.POSITIVE_INFINITY;
  for (const [operator, value] of bounds) {
    if (operator === '>=' || operator === '>') lowest = Math.max(lowest, value.getTime());
    else highest = Math.min(highest, value.getTime());
  }
  const edges = [
    Number.NEGATIVE_INFINITY,
    ...cuts.filter((cut) => cut > lowest && cut < highest),
    Number.POSITIVE_INFINITY,
  ];
  const count = edges.length - 1;
  const segments: Bound[][] = [];
  if (direction === 'asc') {
    for (let start = 0, size = 1; start < count; start += size, size *= 2) {
      segments.push(boundsBetween(edges[start] as number, edges[Math.min(start + size, count)] as number));
    }
  } else {
    for (let end = count, size = 1; end > 0; end -= size, size *= 2) {
      segments.push(boundsBetween(edges[Math.max(end - size, 0)] as number, edges[end] as number));
    }
  }
  return segments;
}

/** Of two lower bounds, or of two upper bounds, the one that lets fewer rows through. */
function tighter(a: Bound | undefined, b: Bound): Bound {
  if (!a) return b;
  const [aOperator, aValue] = a;
  const [, bValue] = b;
  if (aValue.getTime() !== bValue.getTime()) {
    const lower = aOperator === '>=' || aOperator === '>';
    return aValue < bValue === lower ? b : a;
  }
  // At the same instant, the exclusive bound.
  return aOperator === '>' || aOperator === '<' ? a : b;
}

/**
 * The bound on the timestamp a position puts on the rows after it (`earliest`) or before it in
 * ascending (timestamp, source_id) order: exclusive of its instant, unless `sourceId`'s rows at that
 * instant lie beyond it. A page of one source is then exact with bounds on time alone; a page of
 * several uses the instant, inclusive, to plan few partitions, and the position itself as a row
 * comparison.
 */
function positionBound(side: 'earliest' | 'latest', position: PagePosition, sourceId?: number): Bound {
  const { timestamp } = position;
  if (side === 'earliest') {
    return sourceId === undefined || sourceId > position.sourceId ? ['>=', timestamp] : ['>', timestamp];
  }
  return sourceId === undefined || sourceId < position.sourceId ? ['<=', timestamp] : ['<', timestamp];
}

/**
 * The keyset of a page request: its time bounds (the window, and its cursors' instants), the
 * tightest lower and upper bound only, and the cursors' positions for a page over several sources.
 */
function pageKeyset(
  { range, endInclusive, after, before, direction }: PageRequest,
  sources: SourceSelection,
): { bounds: Bound[]; keyset: Keyset } {
  const only = !sources.all && sources.ids.length === 1 ? sources.ids[0] : undefined;
  const ascending = direction === 'asc';
  // "after" means later in the order: later in time when ascending, earlier when descending.
  const earliest = ascending ? after : before;
  const latest = ascending ? before : after;
  let lower: Bound | undefined = range.start && ['>=', range.start];
  let upper: Bound | undefined = range.end && [endInclusive ? '<=' : '<', range.end];
  const positions: Keyset['positions'] = [];
  if (earliest) {
    lower = tighter(lower, positionBound('earliest', earliest, only));
    if (only === undefined) positions.push(['>', earliest]);
  }
  if (latest) {
    upper = tighter(upper, positionBound('latest', latest, only));
    if (only === undefined) positions.push(['<', latest]);
  }
  return {
    bounds: [...(lower ? [lower] : []), ...(upper ? [upper] : [])],
    keyset: { sources, positions },
  };
}

/** Pages of samples by keyset, read on `reads` (the primary, or the standby reads go to). */
export class Pages {
  constructor(
    private readonly reads: Server,
    private readonly known: KnownPartitions,
  ) {}

  /**
   * One page of `sources`' samples, read a stretch of the known partitions at a time
   * (pageSegments): the page size plus one row tells whether there are more.
   */
  async page(
    request: PageRequest,
    sources: SourceSelection,
    scope?: OperationScope,
  ): Promise<Page<StoredMetric>> {
    if (!sources.all && sources.ids.length === 0) return { rows: [], hasMore: false };
    const flipped: SortDirection = request.direction === 'asc' ? 'desc' : 'asc';
    const direction = request.fromEnd ? flipped : request.direction;
    const { bounds, keyset } = pageKeyset(request, sources);
    const take = request.size + 1;
    const rows: StoredMetric[] = [];
    for (const segment of pageSegments(bounds, direction, this.known.cuts)) {
      const { from, rest, values } = keysetPageStatement(
        [...bounds, ...segment],
        keyset,
        direction,
        take - rows.length,
      );
      rows.push(...(await selectMetrics(this.reads, rest, values, scope, from)));
      if (rows.length >= take) break;
    }
    const hasMore = rows.length > request.size;
    const page = rows.slice(0, request.size);
    if (request.fromEnd) page.reverse();
    return { rows: page, hasMore };
  }
}
