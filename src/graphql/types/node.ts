import { brandWithType, PothosValidationError } from '@pothos/core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { StoredMetric } from '../../domain/metric.js';
import type { StoredSource } from '../../domain/source.js';
import { quotedPrefix } from '../../domain/time.js';
import type { Context } from '../builder.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { expensive } from '../expensive-work.js';
import { Metric } from './metric.js';
import { Source } from './source.js';

/** The largest id the bigint identity column can hold. */
const MAX_ID = 9_223_372_036_854_775_807n;
/** The largest id the sources' serial column can hold. */
const MAX_SOURCE_ID = 2 ** 31 - 1;

/** What a global id names: a sample by its id, or a source by its id. */
type NodeKey = { type: 'Metric'; id: bigint } | { type: 'Source'; id: number };

/**
 * The row key a global id names. An id this API cannot have issued (not a global id, another
 * type, a key that is not a positive integer of its column) is the client's mistake: BAD_USER_INPUT
 * naming the argument, never an internal error, quoting at most a short prefix of it.
 */
function nodeKey(argument: string, globalId: string): NodeKey {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch (error) {
    // Pothos' own message quotes the whole id.
    if (error instanceof PothosValidationError) {
      throw badUserInput(argument, `${quotedPrefix(globalId)} is not a global id of this API`);
    }
    throw error;
  }
  const { typename, id } = decoded;
  if (typename === 'Metric') {
    if (!/^[1-9]\d{0,18}$/.test(id) || BigInt(id) > MAX_ID) {
      throw badUserInput(
        argument,
        `the key ${quotedPrefix(id)} is not a Metric id (a positive 64-bit integer)`,
      );
    }
    return { type: 'Metric', id: BigInt(id) };
  }
  if (typename === 'Source') {
    if (!/^[1-9]\d{0,9}$/.test(id) || Number(id) > MAX_SOURCE_ID) {
      throw badUserInput(
        argument,
        `the key ${quotedPrefix(id)} is not a Source id (a positive 32-bit integer)`,
      );
    }
    return { type: 'Source', id: Number(id) };
  }
  throw badUserInput(
    argument,
    `${quotedPrefix(typename)} is not a type of this API; node ids are Metric and Source ids`,
  );
}

/** Tells the Node interface which type a row is. */
function branded<T extends object>(row: T | null | undefined, type: typeof Metric | typeof Source): T | null {
  if (!row) return null;
  brandWithType(row, type);
  return row;
}

/**
 * The nodes these keys name, in their order (null where none): the samples in at most two
 * statements (Lookup), the sources in one.
 */
async function nodesOf(
  keys: readonly NodeKey[],
  { store, scope }: Pick<Context, 'store' | 'scope'>,
): Promise<(StoredMetric | StoredSource | null)[]> {
  const metricIds = keys.flatMap((key) => (key.type === 'Metric' ? [key.id] : []));
  const sourceIds = keys.flatMap((key) => (key.type === 'Source' ? [key.id] : []));
  const [metrics, sources] = await Promise.all([
    metricIds.length > 0 ? store.findByIds(metricIds, scope) : [],
    sourceIds.length > 0 ? store.sourcesByIds(sourceIds, scope) : new Map<number, StoredSource>(),
  ]);
  let metric = 0;
  return keys.map((key) =>
    key.type === 'Metric' ? branded(metrics[metric++], Metric) : branded(sources.get(key.id), Source),
  );
}

builder.queryField('node', (t) =>
  t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description:
      'The Metric or Source with this global id; null when no row has it (deleted, or never written).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, context) => {
      const [node] = await nodesOf([nodeKey('id', String(id))], context);
      return node ?? null;
    },
  }),
);

builder.queryField('nodes', (t) =>
  t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    description:
      'The Metrics and Sources with these global ids, in their order (null for ids no row has), read in at most three statements; ' +
      'at most MAX_NODE_IDS (default 100) ids.',
    args: { ids: t.arg.idList({ required: true }) },
    resolve: async (_root, { ids }, context: Context) => {
      const { maxNodeIds } = context.config.limits;
      if (ids.length > maxNodeIds) {
        throw badUserInput('ids', `at most ${maxNodeIds} ids per request (MAX_NODE_IDS), got ${ids.length}`);
      }
      const keys = ids.map((id) => nodeKey('ids', String(id)));
      return expensive(context, () => nodesOf(keys, context));
    },
  }),
);
