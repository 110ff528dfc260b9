// A real Prometheus 2.42 over a TSDB built by promtool from OpenMetrics text: the oracle the
// conformance test compares the evaluator against.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './ports.js';

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
export const PROMTOOL_BINARY = '/usr/bin/promtool';

const READY_TIMEOUT_MS = 15_000;

export interface RunningPrometheus {
  url: string;
  /** Prometheus' answer to an API request: the parsed JSON body, whatever the status. */
  get(path: string, parameters: Record<string, string>): Promise<PrometheusResponse>;
  stop(): Promise<void>;
}

export type PrometheusResponse =
  | { status: 'success'; data: unknown }
  | { status: 'error'; errorType: string; error: string };

export async function startPrometheus(openMetrics: string): Promise<RunningPrometheus> {
  const directory = await mkdtemp(join(tmpdir(), 'promql-conformance-'));
  const dataFile = join(directory, 'data.om');
  const tsdbPath = join(directory, 'tsdb');
  const configFile = join(directory, 'prometheus.yml');
  await writeFile(dataFile, openMetrics);
  // Nothing to scrape: every sample comes from the imported blocks.
  await writeFile(configFile, 'global:\n  scrape_interval: 1h\n');
  const created = spawnSync(
    PROMTOOL_BINARY,
    ['tsdb', 'create-blocks-from', 'openmetrics', '-q', dataFile, tsdbPath],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  if (created.status !== 0) throw new Error(`promtool failed: ${created.stderr || created.error?.message}`);

  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS_BINARY,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${tsdbPath}`,
      // The data set has fixed timestamps in the past; keep them all.
      '--storage.tsdb.retention.time=100y',
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4_000);
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(directory, { recursive: true, force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within ${READY_TIMEOUT_MS} ms: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    async get(path, parameters) {
      const response = await fetch(`${url}${path}?${new URLSearchParams(parameters)}`, {
        signal: AbortSignal.timeout(10_000),
      });
      return (await response.json()) as PrometheusResponse;
    },
    stop,
  };
}
