import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { StoredMetric } from '../../domain/metric.js';
import type { TimeRange } from '../../domain/time.js';
import { builder } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import { expensive } from '../expensive-work.js';
import { Metric } from './metric.js';
import { SortOrder } from './sort-order.js';

function cursorArgument(name: 'after' | 'before', cursor: string | null | undefined): Date | undefined {
  if (cursor == null) return undefined;
  const timestamp = decodeCursor(cursor);
  if (!timestamp) throw badUserInput(name, 'is not a cursor returned by this API');
  return timestamp;
}

/**
 * An edge of a page. The cursor is a getter on the class, so it is encoded only for the edges whose
 * cursor is asked for, and no edge carries a closure of its own.
 */
class MetricEdge {
  constructor(readonly node: StoredMetric) {}

  get cursor(): string {
    return encodeCursor(this.node.timestamp);
  }
}

function pageSizeArgument(name: 'first' | 'last', size: number | null | undefined, max: number) {
  if (size == null) return undefined;
  if (size < 0) throw badUserInput(name, 'must not be negative');
  if (size > max) throw badUserInput(name, `must be at most ${max}`);
  return size;
}

builder.queryField('metrics', (t) =>
  t.connection(
    {
      type: Metric,
      description:
        'Samples ordered by timestamp, as a Relay cursor connection. `start` is inclusive and `end` exclusive, ' +
        'so adjacent windows tile without overlap; each is optional. Page with `first`/`after` or `last`/`before` ' +
        '(default page size 100, at most 1000); paging visits every matching row exactly once, also while rows are ' +
        'being inserted.',
      args: {
        start: t.arg({ type: 'DateTime', description: 'Only samples at or after this instant (inclusive).' }),
        end: t.arg({ type: 'DateTime', description: 'Only samples before this instant (exclusive).' }),
        order: t.arg({ type: SortOrder, defaultValue: 'asc', required: true, description: 'Sort order.' }),
      },
      resolve: async (_root, args, { store, config, scope }) => {
        const { maxPageSize, defaultPageSize } = config.pagination;
        if (args.first != null && args.last != null) {
          throw badUserInput(
            'first',
            'cannot be combined with last: page forward with first/after or backward with last/before',
          );
        }
        const range: TimeRange = { start: args.start ?? undefined, end: args.end ?? undefined };
        assertStartNotAfterEnd(range);
        const first = pageSizeArgument('first', args.first, maxPageSize);
        const last = pageSizeArgument('last', args.last, maxPageSize);
        const after = cursorArgument('after', args.after);
        const before = cursorArgument('before', args.before);
        const backward = last !== undefined;
        const { rows, hasMore } = await store.page(
          {
            range,
            after,
            before,
            direction: args.order,
            size: backward ? last : (first ?? defaultPageSize),
            fromEnd: backward,
          },
          scope,
        );
        const edges = rows.map((node) => new MetricEdge(node));
        return {
          edges,
          pageInfo: {
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
            hasNextPage: backward ? before !== undefined : hasMore,
            hasPreviousPage: backward ? hasMore : after !== undefined,
          },
          range,
        };
      },
    },
    {
      name: 'MetricConnection',
      fields: (t) => ({
        totalCount: t.int({
          description: 'Samples matching start/end (cursors ignored). Counted only when requested.',
          // A count reads every row of the window: expensive, as a summary is.
          resolve: (connection, _args, context) =>
            expensive(context, () => context.store.count(connection.range, context.scope)),
        }),
      }),
    },
    { name: 'MetricEdge' },
  ),
);
