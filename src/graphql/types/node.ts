import { brandWithType, PothosValidationError } from '@pothos/core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { StoredMetric } from '../../domain/metric.js';
import { quotedPrefix } from '../../domain/time.js';
import type { Context } from '../builder.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { expensive } from '../expensive-work.js';
import { Metric } from './metric.js';

/** The largest id the bigint identity column can hold. */
const MAX_ID = 9_223_372_036_854_775_807n;

/**
 * The row key a global id names. An id this API cannot have issued (not a global id, another
 * type, a key that is not a positive 64-bit integer) is the client's mistake: BAD_USER_INPUT
 * naming the argument, never an internal error, quoting at most a short prefix of it.
 */
function metricKey(argument: string, globalId: string): bigint {
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
  if (decoded.typename !== 'Metric') {
    throw badUserInput(
      argument,
      `${quotedPrefix(decoded.typename)} is not a type of this API; node ids are Metric ids`,
    );
  }
  if (!/^[1-9]\d{0,18}$/.test(decoded.id) || BigInt(decoded.id) > MAX_ID) {
    throw badUserInput(
      argument,
      `the key ${quotedPrefix(decoded.id)} is not a Metric id (a positive 64-bit integer)`,
    );
  }
  return BigInt(decoded.id);
}

/** Tells the Node interface which type a row is. */
function branded(metric: StoredMetric | null): StoredMetric | null {
  if (metric) brandWithType(metric, Metric);
  return metric;
}

builder.queryField('node', (t) =>
  t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description: 'The Metric with this global id; null when no row has it (deleted, or never written).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, { store, scope }) =>
      branded(await store.findById(metricKey('id', String(id)), scope)),
  }),
);

builder.queryField('nodes', (t) =>
  t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    description:
      'The Metrics with these global ids, in their order (null for ids no row has), read in at most two statements; ' +
      'at most MAX_NODE_IDS (default 100) ids.',
    args: { ids: t.arg.idList({ required: true }) },
    resolve: async (_root, { ids }, context: Context) => {
      const { maxNodeIds } = context.config.limits;
      if (ids.length > maxNodeIds) {
        throw badUserInput('ids', `at most ${maxNodeIds} ids per request (MAX_NODE_IDS), got ${ids.length}`);
      }
      const keys = ids.map((id) => metricKey('ids', String(id)));
      const metrics = await expensive(context, () => context.store.findByIds(keys, context.scope));
      return metrics.map(branded);
    },
  }),
);
