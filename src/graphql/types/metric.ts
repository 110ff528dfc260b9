import { builder } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';
import { decodeCursor, encodeCursor } from '../metrics/cursor.js';
import { countMetrics, findMetricsPage, type SortDirection } from '../metrics/queries.js';
import { SortOrder } from './sort-order.js';

export const Metric = builder.prismaNode('Metric', {
  description: 'One sample of machine load.',
  id: { field: 'id' },
  // A well-formed id of a row that does not exist resolves to null, as Relay's `node` expects.
  nullable: true,
  fields: (t) => ({
    timestamp: t.expose('timestamp', {
      type: 'DateTime',
      description: 'When the sample was taken (unique).',
    }),
    unixTime: t.float({
      description:
        'The timestamp as Unix epoch seconds, with milliseconds as the fraction (for chart libraries).',
      resolve: (metric) => metric.timestamp.getTime() / 1000,
    }),
    cpuLoad: t.exposeFloat('cpuLoad', { description: 'CPU load average, >= 0.' }),
    concurrency: t.exposeInt('concurrency', { description: 'Concurrent tasks, >= 0.' }),
  }),
});

function cursorArgument(name: 'after' | 'before', cursor: string | null | undefined): Date | undefined {
  if (cursor == null) return undefined;
  const timestamp = decodeCursor(cursor);
  if (!timestamp) throw badUserInput(name, 'is not a cursor returned by this API');
  return timestamp;
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
      resolve: async (_root, args, { prisma, config }) => {
        const { maxPageSize, defaultPageSize } = config.pagination;
        if (args.first != null && args.last != null) {
          throw badUserInput(
            'first',
            'cannot be combined with last: page forward with first/after or backward with last/before',
          );
        }
        assertStartNotAfterEnd(args.start, args.end);
        const first = pageSizeArgument('first', args.first, maxPageSize);
        const last = pageSizeArgument('last', args.last, maxPageSize);
        const after = cursorArgument('after', args.after);
        const before = cursorArgument('before', args.before);
        const order: SortDirection = args.order;
        const ascending = order === 'asc';

        const window: Prisma.DateTimeFilter = {};
        if (args.start) window.gte = args.start;
        if (args.end) window.lt = args.end;
        // Cursors become exclusive bounds in the sort order: "after" means later when ascending.
        const bounds: Prisma.DateTimeFilter = { ...window };
        const lower = ascending ? after : before;
        const upper = ascending ? before : after;
        if (lower) bounds.gt = lower;
        if (upper && !(window.lt && window.lt < upper)) bounds.lt = upper;

        const backward = last !== undefined;
        const size = backward ? last : (first ?? defaultPageSize);
        const flip = (direction: SortDirection): SortDirection => (direction === 'asc' ? 'desc' : 'asc');
        const rows = await findMetricsPage(prisma, {
          timestamp: bounds,
          direction: backward ? flip(order) : order,
          take: size + 1,
        });
        const hasMore = rows.length > size;
        const page = rows.slice(0, size);
        if (backward) page.reverse();
        // A getter: cursors are encoded only for the edges whose cursor is asked for.
        const edges = page.map((node) => ({
          node,
          get cursor() {
            return encodeCursor(node.timestamp);
          },
        }));
        return {
          edges,
          pageInfo: {
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
            hasNextPage: backward ? before !== undefined : hasMore,
            hasPreviousPage: backward ? hasMore : after !== undefined,
          },
          window,
        };
      },
    },
    {
      name: 'MetricConnection',
      fields: (t) => ({
        totalCount: t.int({
          description: 'Samples matching start/end (cursors ignored). Counted only when requested.',
          resolve: (connection, _args, { prisma }) => countMetrics(prisma, connection.window),
        }),
      }),
    },
    { name: 'MetricEdge' },
  ),
);
