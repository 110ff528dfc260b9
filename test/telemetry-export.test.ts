// End to end: the real server and the real ingest script export OTLP/HTTP (JSON) to a receiver
// this test runs on a loopback port; no collector is needed.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { runScript, scriptEnv, tempDirectory } from './support/ingest.js';
import { closedPort } from './support/ports.js';

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
  service: string;
}

/** An OTLP/HTTP JSON trace receiver: keeps every span it is sent. */
class Receiver {
  readonly spans: ExportedSpan[] = [];
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        if (request.url === '/v1/traces') {
          const payload = JSON.parse(body) as {
            resourceSpans: {
              resource: { attributes: { key: string; value: { stringValue?: string } }[] };
              scopeSpans: { spans: Omit<ExportedSpan, 'service'>[] }[];
            }[];
          };
          for (const resource of payload.resourceSpans) {
            const service =
              resource.resource.attributes.find((attribute) => attribute.key === 'service.name')?.value
                .stringValue ?? '';
            for (const scope of resource.scopeSpans)
              for (const span of scope.spans) this.spans.push({ ...span, service });
          }
        }
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{}');
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#server?.close(() => resolve()));
  }
}

const attribute = (span: ExportedSpan | undefined, key: string) => {
  const value = span?.attributes.find((entry) => entry.key === key)?.value;
  return value?.stringValue ?? value?.intValue ?? value?.boolValue ?? value?.arrayValue;
};

/** A SQL statement's span: named by its summary, which names its table where the store gives one. */
const isStatement = (span: ExportedSpan) => attribute(span, 'db.system.name') === 'postgresql';

let db: TestDatabase;
const receiver = new Receiver();
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.create({
    data: { timestamp: new Date('2026-01-01T00:00:00Z'), cpuLoad: 1, concurrency: 2 },
  });
  await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await db.drop();
});

function otelEnv(service: string): Record<string, string> {
  return {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
}

async function waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  for (let waited = 0; waited < timeoutMs; waited += 50) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the server exporting traces over OTLP', () => {
  let child: ChildProcess;
  let output = '';
  let url = '';
  beforeAll(async () => {
    const port = await closedPort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'src/main.ts')], {
      cwd: projectRoot,
      env: {
        ...scriptEnv(db.url),
        ...otelEnv('metrics-api-e2e'),
        NODE_ENV: 'production',
        METRICS_PUBLIC: 'true',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    // tsx compiles the whole service first: seconds, more on a loaded machine.
    await waitFor(() => (output.includes('metrics-api listening') ? true : undefined), 'the server', 60_000);
  });
  afterAll(async () => {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  });

  it('sends one trace per request, HTTP -> GraphQL -> SQL, joined to the caller, and logs carry its id', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      body: JSON.stringify({ query: 'query Latest { metrics(last: 1) { edges { node { concurrency } } } }' }),
    });
    expect(await response.json()).toEqual({ data: { metrics: { edges: [{ node: { concurrency: 2 } }] } } });
    const spans = await waitFor(() => {
      const found = receiver.spans.filter((span) => span.traceId === traceId);
      return found.some(isStatement) ? found : undefined;
    }, 'the spans of the request');
    expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['metrics-api-e2e']));
    const server = spans.find((span) => span.name === 'POST /graphql');
    const operation = spans.find((span) => span.name === 'query Latest');
    const execute = spans.find((span) => span.name === 'graphql.execute');
    const sql = spans.find(isStatement);
    expect(server?.parentSpanId).toBe('b7ad6b7169203331');
    expect(attribute(server, 'http.route')).toBe('/graphql');
    expect(operation?.parentSpanId).toBe(server?.spanId);
    expect(execute?.parentSpanId).toBe(operation?.spanId);
    expect(sql?.parentSpanId).toBe(execute?.spanId);
    expect(attribute(sql, 'db.system.name')).toBe('postgresql');

    const access = await waitFor(
      () =>
        output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.msg === 'request' && line.trace_id === traceId),
      'the access line',
    );
    expect(access).toMatchObject({ route: '/graphql', status: 200, operation_name: 'Latest' });
  });

  it('marks a failed request ERROR with its code', async () => {
    const traceId = '1af7651916cd43dd8448eb211c80319c';
    await (
      await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
        body: JSON.stringify({ query: '{ metrics(first: -1) { totalCount } }' }),
      })
    ).text();
    const server = await waitFor(
      () => receiver.spans.find((span) => span.traceId === traceId && span.name === 'POST /graphql'),
      'the server span',
    );
    expect(server.status?.code).toBe(2);
    expect(JSON.stringify(attribute(server, 'graphql.error.codes'))).toContain('BAD_USER_INPUT');
  });
});

describe('the ingest script exporting traces', () => {
  it('sends its run, inputs and batches before it exits, also when it exits 1 or 2', async () => {
    const dir = await tempDirectory();
    try {
      const path = join(dir.path, 'in.ndjson');
      await writeFile(
        path,
        [
          JSON.stringify({ timestamp: 1_700_000_000, cpu_load: 1, concurrency: 1 }),
          JSON.stringify({ timestamp: 1_700_000_001, cpu_load: -1, concurrency: 1 }),
        ].join('\n'),
      );
      const rejected = await runScript('scripts/ingest.ts', ['--batch-size', '1', path], {
        env: scriptEnv(db.url, otelEnv('metrics-ingest-e2e')),
      });
      expect(rejected.code).toBe(1);
      // Exported before the process exited: no waiting here.
      const run = receiver.spans.find(
        (span) =>
          span.service === 'metrics-ingest-e2e' &&
          span.name === 'ingest' &&
          attribute(span, 'process.exit.code') === 1,
      );
      expect(run).toBeDefined();
      const ofRun = receiver.spans.filter((span) => span.traceId === run?.traceId);
      expect(ofRun.find((span) => span.name === 'ingest.file')?.parentSpanId).toBe(run?.spanId);
      expect(
        attribute(
          ofRun.find((span) => span.name === 'ingest.file'),
          'metrics_api.ingest.rejected',
        ),
      ).toBe(1);
      const batches = ofRun.filter((span) => span.name === 'ingest.batch');
      expect(batches).toHaveLength(1);
      // A batch of new samples is one COPY straight into metrics, under the batch's span.
      expect(
        ofRun.filter((span) => span.parentSpanId === batches[0]?.spanId).map((span) => span.name),
      ).toEqual(['COPY metrics']);

      const failed = await runScript('scripts/ingest.ts', [path], {
        env: scriptEnv('postgresql://postgres@127.0.0.1:1/none', otelEnv('metrics-ingest-e2e-failed')),
      });
      expect(failed.code).toBe(2);
      const failedRun = receiver.spans.find(
        (span) => span.service === 'metrics-ingest-e2e-failed' && span.name === 'ingest',
      );
      expect(failedRun?.status?.code).toBe(2);
    } finally {
      await dir.remove();
    }
  });
});
