import type { StoredMetric } from '../domain/metric.js';
import type { Page, PageRequest, SortDirection } from '../domain/paging.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { KnownPartitions } from './known-partitions.js';
import { selectMetrics } from './metric-rows.js';
import type { Server } from './server.js';

/** A bound on "timestamp" for the keyset page's WHERE clause. */
type Bound = readonly ['>=' | '>' | '<' | '<=', Date];

/**
 * What follows `FROM metrics` in a keyset page: rows within `bounds`, in `direction`, at most
 * `take`. Cursors are more bounds on the timestamp, so Postgres answers every page, however deep,
 * with one range scan of the unique timestamp index.
 */
function keysetPageClauses(
  bounds: readonly Bound[],
  direction: SortDirection,
  take: number,
): { text: string; values: unknown[] } {
  const values: unknown[] = [take];
  const conditions = bounds.map(([operator, value]) => {
    values.push(value);
    return `"timestamp" ${operator} $${values.length}`;
  });
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  const order = direction === 'asc' ? 'ASC' : 'DESC';
  return { text: `${where} ORDER BY "timestamp" ${order} LIMIT $1`, values };
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

/** The keyset bounds of a page request: its window, and its cursors in the sort order. */
function pageBounds({ range, endInclusive, after, before, direction }: PageRequest): Bound[] {
  const ascending = direction === 'asc';
  // "after" means later in the order: later in time when ascending, earlier when descending.
  const earliest = ascending ? after : before;
  const latest = ascending ? before : after;
  const bounds: Bound[] = [];
  if (range.start) bounds.push(['>=', range.start]);
  if (earliest) bounds.push(['>', earliest]);
  // Of an exclusive end and a cursor, only the tighter is sent.
  if (range.end && !(latest && latest <= range.end)) bounds.push([endInclusive ? '<=' : '<', range.end]);
  else if (latest) bounds.push(['<', latest]);
  return bounds;
}

/** Pages of samples by keyset, read on `reads` (the primary, or the standby reads go to). */
export class Pages {
  constructor(
    private readonly reads: Server,
    private readonly known: KnownPartitions,
  ) {}

  /**
   * One page, read a stretch of the known partitions at a time (pageSegments): the page size plus
   * one row tells whether there are more.
   */
  async page(request: PageRequest, scope?: OperationScope): Promise<Page<StoredMetric>> {
    const flipped: SortDirection = request.direction === 'asc' ? 'desc' : 'asc';
    const direction = request.fromEnd ? flipped : request.direction;
    const bounds = pageBounds(request);
    const take = request.size + 1;
    const rows: StoredMetric[] = [];
    for (const segment of pageSegments(bounds, direction, this.known.cuts)) {
      const clauses = keysetPageClauses([...bounds, ...segment], direction, take - rows.length);
      rows.push(...(await selectMetrics(this.reads, clauses.text, clauses.values, scope)));
      if (rows.length >= take) break;
    }
    const hasMore = rows.length > request.size;
    const page = rows.slice(0, request.size);
    if (request.fromEnd) page.reverse();
    return { rows: page, hasMore };
  }
}
