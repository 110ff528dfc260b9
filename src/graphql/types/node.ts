import { brandWithType, PothosValidationError } from '@pothos/core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { StoredMetric } from '../../store/metric-store.js';
import type { Context } from '../builder.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { Metric } from './metric.js';

/** The largest id the bigint identity column can hold. */
const MAX_ID = 9_223_372_036_854_775_807n;

/**
 * The row a global id names, or null when no row has it. An id this API cannot have issued (not a
 * global id, another type, a key that is not a positive 64-bit integer) is the client's mistake:
 * BAD_USER_INPUT naming the argument, never an internal error. A well-formed id of a row that does
 * not exist (deleted, or never written) is null, as Relay's `node` expects.
 */
async function resolveNode(
  argument: string,
  globalId: string,
  { store, scope }: Context,
): Promise<StoredMetric | null> {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch (error) {
    if (error instanceof PothosValidationError) throw badUserInput(argument, error.message);
    throw error;
  }
  if (decoded.typename !== 'Metric') {
    throw badUserInput(argument, `${decoded.typename} is not a type of this API; node ids are Metric ids`);
  }
  if (!/^[1-9]\d{0,18}$/.test(decoded.id) || BigInt(decoded.id) > MAX_ID) {
    throw badUserInput(
      argument,
      `the key of Metric:${decoded.id} is not a Metric id (a positive 64-bit integer)`,
    );
  }
  const metric = await store.findById(BigInt(decoded.id), scope);
  // Tells the Node interface which type this is.
  if (metric) brandWithType(metric, Metric);
  return metric;
}

builder.queryField('node', (t) =>
  t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, context) => resolveNode('id', String(id), context),
  }),
);

builder.queryField('nodes', (t) =>
  t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    args: { ids: t.arg.idList({ required: true }) },
    resolve: (_root, { ids }, context) =>
      Promise.all(ids.map((id) => resolveNode('ids', String(id), context))),
  }),
);
