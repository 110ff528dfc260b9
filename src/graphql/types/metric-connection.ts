import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { StoredMetric } from '../../domain/metric.js';
import type { PagePosition, SortDirection } from '../../domain/paging.js';
import type { TimeRange } from '../../domain/time.js';
import type { SourceSelection } from '../../store/source-filter.js';
import { builder, type Context } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import { expensive } from '../expensive-work.js';
import { Metric } from './metric.js';
import { SortOrder } from './sort-order.js';
import { selectedSources, sourceFilterArguments } from './source-arguments.js';

function cursorArgument(
  name: 'after' | 'before',
  cursor: string | null | undefined,
): PagePosition | undefined {
  if (cursor == null) return undefined;
  const position = decodeCursor(cursor);
  if (!position) throw badUserInput(name, 'is not a cursor returned by this API');
  return position;
}

/**
 * An edge of a page. The cursor is a getter on the class, so it is encoded only for the edges whose
 * cursor is asked for, and no edge carries a closure of its own.
 */
class MetricEdge {
  constructor(readonly node: StoredMetric) {}

  get cursor(): string {
    return encodeCursor(this.node);
  }
}

/** A Relay page's pageInfo. */
interface PageInfo {
  startCursor: string | null;
  endCursor: string | null;
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

/**
 * The pageInfo of a keyset page read forward from `after` or backward (`last`) from `before`:
 * `hasMore` says whether rows lie beyond the page's far end. Pages of samples and of sources.
 */
export function keysetPageInfo(
  edges: readonly { cursor: string }[],
  {
    backward,
    hasMore,
    after,
    before,
  }: { backward: boolean; hasMore: boolean; after: unknown; before: unknown },
): PageInfo {
  return {
    startCursor: edges[0]?.cursor ?? null,
    endCursor: edges.at(-1)?.cursor ?? null,
    hasNextPage: backward ? before !== undefined : hasMore,
    hasPreviousPage: backward ? hasMore : after !== undefined,
  };
}

/** A page of samples, with what totalCount counts: the window and sources it was taken from. */
interface MetricPage {
  edges: MetricEdge[];
  pageInfo: PageInfo;
  range: TimeRange;
  sources: SourceSelection;
}

/** A page size argument; refused when negative or larger than `max`. */
export function pageSizeArgument(name: 'first' | 'last', size: number | null | undefined, max: number) {
  if (size == null) return undefined;
  if (size < 0) throw badUserInput(name, 'must not be negative');
  if (size > max) throw badUserInput(name, `must be at most ${max}`);
  return size;
}

/** Refuses `first` and `last` together: a page is taken from one end. */
export function assertOneEnd(args: { first?: number | null; last?: number | null }): void {
  if (args.first != null && args.last != null) {
    throw badUserInput(
      'first',
      'cannot be combined with last: page forward with first/after or backward with last/before',
    );
  }
}

/** The arguments of a page of samples, whoever's they are. */
export interface MetricPageArguments {
  start?: Date | null;
  end?: Date | null;
  order: SortDirection;
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

/**
 * The page of `sources`' samples the arguments ask for: Query.metrics and Source.metrics. Ordered
 * by time, then source.
 */
export async function metricPage(
  args: MetricPageArguments,
  sources: () => SourceSelection | Promise<SourceSelection>,
  { store, config, scope }: Pick<Context, 'store' | 'config' | 'scope'>,
): Promise<MetricPage> {
  const { maxPageSize, defaultPageSize } = config.pagination;
  assertOneEnd(args);
  const range: TimeRange = { start: args.start ?? undefined, end: args.end ?? undefined };
  assertStartNotAfterEnd(range);
  const first = pageSizeArgument('first', args.first, maxPageSize);
  const last = pageSizeArgument('last', args.last, maxPageSize);
  const after = cursorArgument('after', args.after);
  const before = cursorArgument('before', args.before);
  const backward = last !== undefined;
  const selection = await sources();
  const { rows, hasMore } = await store.page(
    {
      range,
      after,
      before,
      direction: args.order,
      size: backward ? last : (first ?? defaultPageSize),
      fromEnd: backward,
    },
    selection,
    scope,
  );
  const edges = rows.map((node) => new MetricEdge(node));
  return {
    edges,
    pageInfo: keysetPageInfo(edges, { backward, hasMore, after, before }),
    range,
    sources: selection,
  };
}

export const MetricConnection = builder.connectionObject<typeof Metric, MetricPage>(
  {
    type: Metric,
    name: 'MetricConnection',
    fields: (t) => ({
      totalCount: t.int({
        description:
          'Samples matching start/end and the sources asked for (cursors ignored). Counted only when requested.',
        // A count reads every row of the window: expensive, as a summary is.
        resolve: (connection, _args, context) =>
          expensive(context, () =>
            context.store.count(
              (connection as MetricPage).range,
              (connection as MetricPage).sources,
              context.scope,
            ),
          ),
      }),
    }),
  },
  { name: 'MetricEdge' },
);

/** The arguments of a page of samples but the connection's own (first, after, last, before). */
export const metricPageArguments = builder.args((t) => ({
  start: t.field({ type: 'DateTime', description: 'Only samples at or after this instant (inclusive).' }),
  end: t.field({ type: 'DateTime', description: 'Only samples before this instant (exclusive).' }),
  order: t.field({ type: SortOrder, defaultValue: 'asc', required: true, description: 'Sort order.' }),
}));

builder.queryField('metrics', (t) =>
  t.connection(
    {
      type: Metric,
      description:
        'Samples ordered by timestamp, then by source, as a Relay cursor connection. `start` is inclusive and `end` exclusive, ' +
        'so adjacent windows tile without overlap; each is optional. Page with `first`/`after` or `last`/`before` ' +
        '(default page size 100, at most 1000); paging visits every matching row exactly once, also while rows are ' +
        'being inserted. `source`, `sources` or `labels` narrow it to some sources; without them it covers every source.',
      args: { ...metricPageArguments, ...sourceFilterArguments },
      resolve: (_root, args, context) => metricPage(args, () => selectedSources(args, context), context),
    },
    MetricConnection,
  ),
);
