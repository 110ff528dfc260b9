/**
 * What observability costs: W1 (first page of 100) on the service as it was before the
 * instrumentation existed, with OpenTelemetry off, with every trace exported over OTLP to a local
 * receiver, and with 10% sampled; then how long a /metrics scrape takes with every series filled.
 */

import { createServer } from 'node:http';
import { buildAt } from './builds.js';
import type { LoadOptions, LoadResult } from './load.js';
import { runLoad } from './load.js';
import { freePort, NODE_FLAGS, productionEnv, Service } from './processes.js';
import { workloads } from './workloads.js';

/** The last commit before src/observability/ had its instrumentation (issue 10). */
export const UNINSTRUMENTED_REF = '7b03e4a';

export interface ObservabilityVariant {
  name: string;
  /** The run with the median req/s of ROUNDS. */
  result: LoadResult;
  /** req/s of every round, in order. */
  rounds: number[];
}

/** Rounds of all variants, interleaved, so that drift on the machine falls on every variant alike. */
const ROUNDS = 3;

export interface ObservabilityResult {
  variants: ObservabilityVariant[];
  /** Milliseconds of 20 sequential scrapes of /metrics after the load: median and slowest. */
  scrapeMs: { median: number; max: number; bytes: number };
  spansReceived: number;
}

/** An OTLP/HTTP receiver that accepts and counts export requests, as a collector would take them. */
async function startSink(): Promise<{ url: string; requests: () => number; stop(): Promise<void> }> {
  let requests = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      requests++;
      response.writeHead(200, { 'content-type': 'application/x-protobuf' });
      response.end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export async function benchObservability(options: {
  service: { command: string; args: string[] };
  databaseUrl: string;
  load: LoadOptions;
  settle: () => Promise<void>;
  cpu: (pid: number | undefined) => Promise<Record<string, Map<number, number>>>;
  log: (line: string) => void;
}): Promise<ObservabilityResult> {
  const page = workloads('').find((workload) => workload.id === '1');
  if (!page) throw new Error('W1 is missing');
  const sink = await startSink();
  const uninstrumented = await buildAt(UNINSTRUMENTED_REF, 'before the instrumentation', options.log);
  const env = (extra: Record<string, string>, port: number): NodeJS.ProcessEnv => {
    const clean = { ...process.env };
    for (const name of Object.keys(clean)) if (name.startsWith('OTEL_')) delete clean[name];
    return productionEnv(clean, options.databaseUrl, port, { ACCESS_LOG: 'false', ...extra });
  };
  const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'metrics-api-bench' };
  const variants: { name: string; command: string; args: string[]; env: Record<string, string> }[] = [
    {
      name: `without the instrumentation (${UNINSTRUMENTED_REF})`,
      command: process.execPath,
      args: [...NODE_FLAGS, uninstrumented],
      env: {},
    },
    { name: 'OpenTelemetry off (no OTEL_* set)', ...options.service, env: {} },
    { name: 'traces on, 100% sampled, OTLP', ...options.service, env: traced },
    {
      name: 'traces on, parentbased_traceidratio 0.1, OTLP',
      ...options.service,
      env: { ...traced, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
    },
  ];
  const runs = new Map<string, LoadResult[]>();
  let scrapeMs = { median: Number.NaN, max: Number.NaN, bytes: 0 };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of variants) {
      const port = await freePort();
      const service = Service.start(variant.name, variant.command, variant.args, env(variant.env, port));
      const url = `http://127.0.0.1:${port}`;
      try {
        await service.waitReady(`${url}/readyz`);
        options.log(`observability round ${round}/${ROUNDS}: W1 ${variant.name}`);
        const result = await runLoad(url, page.service, options.load, {
          settle: options.settle,
          cpu: () => options.cpu(service.child.pid),
        });
        options.log(`  ${result.requestsPerSecond.toFixed(0)} req/s, p99 ${result.p99.toFixed(2)} ms`);
        runs.set(variant.name, [...(runs.get(variant.name) ?? []), result]);
        if (round === ROUNDS && variant.name.startsWith('OpenTelemetry off')) {
          const times: number[] = [];
          let bytes = 0;
          for (let i = 0; i < 20; i++) {
            const started = performance.now();
            const text = await (await fetch(`${url}/metrics`)).text();
            times.push(performance.now() - started);
            bytes = text.length;
          }
          times.sort((x, y) => x - y);
          scrapeMs = { median: times[10] as number, max: times[19] as number, bytes };
        }
      } finally {
        await service.stop();
      }
    }
  }
  const results: ObservabilityVariant[] = variants.map(({ name }) => {
    const all = runs.get(name) ?? [];
    const sorted = [...all].sort((x, y) => x.requestsPerSecond - y.requestsPerSecond);
    return {
      name,
      result: sorted[Math.floor(sorted.length / 2)] as LoadResult,
      rounds: all.map((run) => run.requestsPerSecond),
    };
  });
  const spansReceived = sink.requests();
  await sink.stop();
  return { variants: results, scrapeMs, spansReceived };
}
