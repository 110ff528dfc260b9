import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import type { Config } from '../config.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { LiveAggregates } from '../live/live-aggregates.js';
import type { LiveSamples } from '../live/live-samples.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { ServiceMetrics } from '../observability/service-metrics.js';
import type { AggregateCache } from '../store/aggregate-cache.js';
import type { ExpensiveWork } from '../store/expensive-work.js';
import type { MetricStore } from '../store/metric-store.js';

/** What every resolver gets: built once in main() and shared by all requests, but for `request`. */
export interface Context {
  config: Config;
  store: MetricStore;
  aggregates: AggregateCache;
  serviceMetrics: ServiceMetrics;
  /** The subscriptions' sources, fed by this replica's one change listener. */
  live: { samples: LiveSamples; aggregates: LiveAggregates };
  /** For plugin-prisma alone; resolvers read and write through the store. */
  prisma: PrismaClient;
  request: Request;
  /** Where the store records the statements run for this request (the slow-operation log). */
  scope: OperationScope | undefined;
  /**
   * Runs work that reads much of the database in one of the client's slots: given to every
   * request by http/expensive-work-slots.ts (see expensive-work.ts).
   */
  expensive?: ExpensiveWork;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: { list: false; items: false };
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    /** A length of time, in whole seconds. */
    Duration: { Input: number; Output: number };
    ID: { Input: string; Output: string | number | bigint };
  };
}>({
  plugins: [PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  prisma: {
    client: (context) => context.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesOnConnection: true,
    // types/node.ts declares node and nodes: they validate ids and read through the store.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: { list: false, items: false } },
    nodeFieldOptions: { nullable: false },
  },
});
