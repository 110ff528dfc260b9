import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  getArgumentValues,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import { seriesBucketCount, seriesWindow } from '../domain/series.js';
import { MAX_SOURCE_LABELS } from '../domain/source.js';
import { MAX_SOURCE_SERIES, MAX_SOURCE_SUMMARIES } from '../domain/summary.js';

/**
 * What an operation costs, roughly in rows the database reads or objects the server writes:
 * - every object in the answer costs 1, and a list's objects count once per item: a page's edges
 *   and nodes by its page size (`first`/`last`, else DEFAULT_PAGE_SIZE), a series' buckets by
 *   the buckets its window spans, `nodes` by its ids, per-source answers by their `first`, and
 *   each per-source series' buckets by its window again; leaves (numbers, strings) cost nothing more;
 * - the fields that read much of the database add a fixed cost: a summary, and `totalCount`
 *   (both read every row of their window, or its rollups), and a series; a field of each item of
 *   a list (a Source's summary on a page of sources) costs once per item;
 * - aliases ask again, and cost again.
 * Sizes are capped where the resolver refuses larger ones (MAX_PAGE_SIZE, MAX_SERIES_BUCKETS,
 * MAX_NODE_IDS), so that the resolver's more precise refusal is the one a client sees.
 *
 * With the default MAX_QUERY_COST of 50,000: a page of 1,000 with its nodes and edges costs
 * about 3,000, a summary 5,000, a series of 10,000 buckets 31,000; the dashboard's series and
 * summary together at most 36,000. Ten summaries (nine pass), or two full series, are refused.
 */
export const SUMMARY_COST = 5000;
export const COUNT_COST = 5000;
export const SERIES_COST = 1000;
/** A page, a node, a subscription's start: one indexed statement. */
const READ_COST = 10;
/** Counting sources: at most MAX_SOURCES rows of a narrow table. */
const SOURCE_COUNT_COST = 100;

export interface CostLimits {
  pagination: { defaultPageSize: number; maxPageSize: number };
  maxSeriesBuckets: number;
  limits: { maxNodeIds: number };
}

/**
 * What a field adds to an operation's cost, and how many items its lists (and those below it)
 * hold; `itemListSize`, when the lists below its items hold another number (a per-source series:
 * `first` series, each of its window's buckets).
 */
interface FieldCost {
  base: number;
  listSize?: number;
  itemListSize?: number;
}

type FieldRule = (args: Record<string, unknown>, limits: CostLimits) => FieldCost;

const atMost = (size: number, max: number) => Math.max(0, Math.min(size, max));

/** The buckets a series' arguments span, at most MAX_SERIES_BUCKETS. */
function seriesBuckets(args: Record<string, unknown>, maxSeriesBuckets: number): number {
  const bucket = args.bucket as number;
  const window = seriesWindow(
    args.start as Date | undefined,
    args.end as Date | undefined,
    bucket,
    maxSeriesBuckets,
    new Date(),
  );
  return atMost(seriesBucketCount(window.start, window.end, bucket), maxSeriesBuckets);
}

/** A page of samples: Query.metrics and Source.metrics. */
const metricPage: FieldRule = (args, { pagination }) => ({
  base: READ_COST,
  listSize: atMost((args.first ?? args.last ?? pagination.defaultPageSize) as number, pagination.maxPageSize),
});

/** A series: Query.metricSeries and Source.series. */
const series: FieldRule = (args, { maxSeriesBuckets }) => ({
  base: SERIES_COST,
  listSize: seriesBuckets(args, maxSeriesBuckets),
});

/** The fields whose cost is more than their objects', by `Type.field`. */
const FIELD_RULES: Record<string, FieldRule> = {
  'Query.metrics': metricPage,
  'Source.metrics': metricPage,
  'MetricConnection.totalCount': () => ({ base: COUNT_COST }),
  'Query.metricsSummary': () => ({ base: SUMMARY_COST }),
  'Source.summary': () => ({ base: SUMMARY_COST }),
  'Query.metricSeries': series,
  'Source.series': series,
  'Query.sourceSummaries': (args) => ({
    base: SUMMARY_COST,
    listSize: atMost(args.first as number, MAX_SOURCE_SUMMARIES),
  }),
  'Query.sourceSeries': (args, { maxSeriesBuckets }) => {
    const first = atMost(args.first as number, MAX_SOURCE_SERIES);
    return {
      base: SERIES_COST * first,
      listSize: first,
      itemListSize: seriesBuckets(args, maxSeriesBuckets),
    };
  },
  'Query.source': () => ({ base: READ_COST }),
  'Query.sources': (args, { pagination }) => ({
    base: READ_COST,
    listSize: atMost(
      (args.first ?? args.last ?? pagination.defaultPageSize) as number,
      pagination.maxPageSize,
    ),
  }),
  'SourceConnection.totalCount': () => ({ base: SOURCE_COUNT_COST }),
  'Source.labels': () => ({ base: 0, listSize: MAX_SOURCE_LABELS }),
  'Query.node': () => ({ base: READ_COST }),
  'Query.nodes': (args, { limits }) => ({
    base: READ_COST,
    listSize: atMost((args.ids as unknown[]).length, limits.maxNodeIds),
  }),
  'Subscription.metricSeriesUpdated': (args, { maxSeriesBuckets }) => ({
    base: SERIES_COST,
    listSize: atMost(Math.ceil((args.window as number) / (args.bucket as number)) + 1, maxSeriesBuckets),
  }),
  'Subscription.metricsSummaryUpdated': () => ({ base: SUMMARY_COST }),
  'Subscription.metricsAdded': () => ({ base: READ_COST }),
  'Subscription.metricsAddedBatch': () => ({ base: READ_COST }),
};

/**
 * The estimated cost of the operation `operationName` of `document` with `variables`; undefined
 * when the operation cannot run (none by that name, variables that do not fit their types):
 * execution refuses it before any resolver runs.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
  limits: CostLimits,
): number | undefined {
  const operation = getOperationAST(document, operationName);
  const rootType = operation && schema.getRootType(operation.operation);
  if (!operation || !rootType) return undefined;
  // No field of Mutation is priced, and a mutation's variables (up to INGEST_MAX_SAMPLES samples)
  // would be coerced here once more before execution coerces them.
  if (operation.operation === 'mutation') return undefined;
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {}, {
    maxErrors: 1,
  });
  if (!variables.coerced) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment spread many times (or by fragments spread many times) is costed once per list size.
  const fragmentCosts = new Map<string, number>();

  const fieldCost = (
    field: GraphQLField<unknown, unknown>,
    parent: string,
    node: FieldNode,
    listSize: number,
  ) => {
    const rule = FIELD_RULES[`${parent}.${field.name}`];
    let own: FieldCost = { base: 0 };
    if (rule) {
      try {
        own = rule(getArgumentValues(field, node, variables.coerced), limits);
      } catch {
        // Arguments the field refuses: its resolver answers an error without reading anything.
        own = { base: 0, listSize: 0 };
      }
    }
    const size = own.listSize ?? listSize;
    const type = getNamedType(field.type);
    const items = isListType(getNullableType(field.type)) ? size : 1;
    const objectCost =
      isCompositeType(type) && node.selectionSet
        ? 1 + selectionCost(type, node.selectionSet, own.itemListSize ?? size)
        : 0;
    return own.base + items * objectCost;
  };

  const selectionCost = (
    type: GraphQLNamedType,
    selectionSet: SelectionSetNode,
    listSize: number,
  ): number => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        // Introspection (__schema, __type, __typename) is bounded by the schema, and off in production.
        if (selection.name.value.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
        const field = type.getFields()[selection.name.value];
        if (field) cost += fieldCost(field, type.name, selection, listSize);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        if (on) cost += selectionCost(on, selection.selectionSet, listSize);
      } else {
        const fragment = fragments.get(selection.name.value);
        const on = fragment && schema.getType(fragment.typeCondition.name.value);
        if (!fragment || !on) continue;
        const key = `${fragment.name.value}:${listSize}`;
        let fragmentCost = fragmentCosts.get(key);
        if (fragmentCost === undefined) {
          fragmentCost = selectionCost(on, fragment.selectionSet, listSize);
          fragmentCosts.set(key, fragmentCost);
        }
        cost += fragmentCost;
      }
    }
    return cost;
  };

  return selectionCost(rootType, operation.selectionSet, 1);
}
