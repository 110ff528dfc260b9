import { decodeSourceCursor, encodeSourceCursor } from '../../domain/cursor.js';
import type { SourceOrder as SourceOrderValue, SourcePosition, SourceSearch } from '../../domain/paging.js';
import {
  checkSourceName,
  checkSourceNamePrefix,
  type SourceLabels,
  type StoredSource,
} from '../../domain/source.js';
import type { SourceSelection } from '../../store/source-filter.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { expensive } from '../expensive-work.js';
import { loadSource } from '../source-loader.js';
import { Metric } from './metric.js';
import { MetricBucket, seriesArguments, seriesOf } from './metric-bucket.js';
import {
  assertOneEnd,
  keysetPageInfo,
  MetricConnection,
  metricPage,
  metricPageArguments,
  pageSizeArgument,
} from './metric-connection.js';
import { MetricSummary, summaryArguments, summaryOf } from './metric-summary.js';
import { LabelMatcherInput, sourceFilterOf } from './source-arguments.js';

/** A label of a source, as GraphQL shows it. */
interface LabelValue {
  name: string;
  value: string;
}

export const Label = builder.objectRef<LabelValue>('Label').implement({
  description: 'A label of a source: a name and its value, e.g. region = "eu".',
  fields: (t) => ({
    name: t.exposeString('name'),
    value: t.exposeString('value'),
  }),
});

/** A source's labels in order of name. */
function labelsOf(labels: SourceLabels): LabelValue[] {
  return Object.entries(labels)
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The selection of one source, for the questions a Source answers about its own samples. */
const only = (source: { id: number }): SourceSelection => ({ all: false, ids: [source.id] });

/**
 * A source with plugin-prisma: the `sources` model, a Relay node whose global id is its row id.
 * Its rows come from the store (types/node.ts, Query.source, Query.sources, Metric.source load
 * them), so that every read runs where the store runs reads, observed and classified.
 */
export const Source = builder.prismaNode('Source', {
  description:
    'A host, pod or service instance that reports samples. Made by the first write that names it; ' +
    'samples written without a source belong to the default source (DEFAULT_SOURCE).',
  id: { field: 'id' },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Unique; how writers and readers name the source.' }),
    labels: t.field({
      type: [Label],
      description: 'What describes the source (e.g. region, k8s.namespace), in order of name.',
      resolve: (source) => labelsOf(source.labels as SourceLabels),
    }),
    firstSeen: t.expose('firstSeen', {
      type: 'DateTime',
      nullable: true,
      description: 'The timestamp of its earliest sample ever written; null before its first.',
    }),
    lastSeen: t.expose('lastSeen', {
      type: 'DateTime',
      nullable: true,
      description: 'The timestamp of its latest sample ever written; null before its first.',
    }),
    metrics: t.connection(
      {
        type: Metric,
        description: "The source's samples, as Query.metrics gives them with `source` set to this source.",
        args: metricPageArguments,
        resolve: (source, args, context) => metricPage(args, () => only(source), context),
      },
      MetricConnection,
    ),
    summary: t.field({
      type: MetricSummary,
      description: "The summary of the source's samples, as Query.metricsSummary gives it for this source.",
      args: summaryArguments,
      resolve: (source, args, context) => summaryOf(args, () => only(source), context),
    }),
    series: t.field({
      type: [MetricBucket],
      description: "The series of the source's samples, as Query.metricSeries gives it for this source.",
      args: seriesArguments,
      resolve: (source, args, context) => seriesOf(args, () => only(source), context),
    }),
  }),
});

builder.prismaObjectField(Metric, 'source', (t) =>
  t.field({
    type: Source,
    description: 'The source the sample belongs to.',
    // The sources of a page's samples are read together, in one statement (source-loader.ts).
    resolve: (metric, _args, context) => loadSource(context, metric.sourceId),
  }),
);

export const SourceOrder = builder.enumType('SourceOrder', {
  description: 'How a page of sources is ordered.',
  values: {
    NAME: { value: 'name', description: 'By name.' },
    LAST_SEEN: {
      value: 'lastSeen',
      description: 'Most recently seen first; sources never seen last.',
    },
  } as const satisfies Record<string, { value: SourceOrderValue; description: string }>,
});

function sourceCursorArgument(
  name: 'after' | 'before',
  cursor: string | null | undefined,
  order: SourceOrderValue,
): SourcePosition | undefined {
  if (cursor == null) return undefined;
  const position = decodeSourceCursor(cursor);
  if (!position) throw badUserInput(name, 'is not a cursor returned by this API');
  if (position.order !== order) throw badUserInput(name, 'is a cursor of another orderBy');
  return position;
}

/** Where a source stands in `order`, the cursor of its edge. */
function positionOf(source: StoredSource, order: SourceOrderValue): SourcePosition {
  return order === 'name'
    ? { order, name: source.name }
    : { order, lastSeen: source.lastSeen, id: source.id };
}

/** A page of sources, with what totalCount counts: the search it is a page of. */
interface SourcePage {
  edges: { node: StoredSource; cursor: string }[];
  pageInfo: {
    startCursor: string | null;
    endCursor: string | null;
    hasNextPage: boolean;
    hasPreviousPage: boolean;
  };
  search: SourceSearch;
}

export const SourceConnection = builder.connectionObject<typeof Source, SourcePage>(
  {
    type: Source,
    name: 'SourceConnection',
    fields: (t) => ({
      totalCount: t.int({
        description: 'Sources matching namePrefix and labels (cursors ignored). Counted only when requested.',
        resolve: (connection, _args, context) =>
          expensive(context, () =>
            context.store.sourceCount((connection as SourcePage).search, context.scope),
          ),
      }),
    }),
  },
  { name: 'SourceEdge' },
);

builder.queryField('source', (t) =>
  t.field({
    type: Source,
    nullable: true,
    description: 'The source of this name; null when there is none.',
    args: { name: t.arg.string({ required: true }) },
    // A name no source can have (too long, a control character) is not looked for.
    resolve: (_root, { name }, { store, scope }) =>
      checkSourceName(name) === null ? store.sourceByName(name, scope) : null,
  }),
);

builder.queryField('sources', (t) =>
  t.connection(
    {
      type: Source,
      description:
        'Sources, as a Relay cursor connection, by name or most recently seen first; `namePrefix` and `labels` ' +
        'narrow them. Page with `first`/`after` or `last`/`before` (default page size 100, at most 1000).',
      args: {
        namePrefix: t.arg.string({ description: 'Only the sources whose names start with this.' }),
        labels: t.arg({
          type: [LabelMatcherInput],
          description: 'Only the sources whose labels match every matcher (at most 16).',
        }),
        orderBy: t.arg({
          type: SourceOrder,
          required: true,
          defaultValue: 'name',
          description: 'The order.',
        }),
      },
      resolve: async (_root, args, { store, config, scope }) => {
        const { maxPageSize, defaultPageSize } = config.pagination;
        assertOneEnd(args);
        const prefixProblem = args.namePrefix == null ? null : checkSourceNamePrefix(args.namePrefix);
        if (prefixProblem) throw badUserInput('namePrefix', prefixProblem);
        const first = pageSizeArgument('first', args.first, maxPageSize);
        const last = pageSizeArgument('last', args.last, maxPageSize);
        const order = args.orderBy;
        const after = sourceCursorArgument('after', args.after, order);
        const before = sourceCursorArgument('before', args.before, order);
        const backward = last !== undefined;
        const search: SourceSearch = {
          namePrefix: args.namePrefix ?? undefined,
          labels: sourceFilterOf({ labels: args.labels })?.labels,
        };
        const { rows, hasMore } = await store.sourcePage(
          {
            ...search,
            order,
            after,
            before,
            size: backward ? last : (first ?? defaultPageSize),
            fromEnd: backward,
          },
          scope,
        );
        const edges = rows.map((node) => ({ node, cursor: encodeSourceCursor(positionOf(node, order)) }));
        return {
          edges,
          pageInfo: keysetPageInfo(edges, { backward, hasMore, after, before }),
          search,
        };
      },
    },
    SourceConnection,
  ),
);
