/** Runs autocannon against one target: a warm-up, then a measured run with every latency kept. */
import autocannon from 'autocannon';
import type { Target } from './workloads.js';

export interface LoadOptions {
  connections: number;
  /** Seconds of the measured run. */
  duration: number;
  /** Seconds of warm-up (same connections), not measured. */
  warmup: number;
  /** Seconds after which a request counts as timed out (an error). */
  timeout: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  /** Milliseconds, from every 2xx answer of the measured run. */
  p50: number;
  p99: number;
  /** Non-2xx answers + connection errors and timeouts + answers failing the body check. */
  errors: number;
  errorDetail: string;
  requests: number;
  seconds: number;
  /** CPU milliseconds per answered request, by process group (server, postgres), when measured. */
  cpuMsPerRequest: Record<string, number>;
}

export interface LoadHooks {
  /** Runs before the warm-up and before the measured run (waits for the database to be idle). */
  settle?: () => Promise<void>;
  /**
   * CPU milliseconds used so far by process, grouped (server, postgres); read right before and
   * after the measured run. Processes that exit in between are left out; new ones count from 0.
   */
  cpu?: () => Promise<Record<string, Map<number, number>>>;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}

function autocannonOptions(baseUrl: string, target: Target, options: LoadOptions, duration: number) {
  return {
    url: `${baseUrl}${target.path}`,
    method: target.method,
    headers: target.headers ?? {},
    ...(target.body !== undefined ? { body: target.body } : {}),
    connections: options.connections,
    duration,
    timeout: options.timeout,
    verifyBody: (body: string) => body.startsWith(target.prefix) && !body.includes('"errors"'),
    ...(target.next ? { requests: [{ setupRequest: nextRequest(target.next) }] } : {}),
  };
}

function nextRequest(next: NonNullable<Target['next']>) {
  return (request: { path?: string; body?: string }) => {
    const { path, body } = next();
    return body === undefined ? { ...request, path } : { ...request, path, body };
  };
}

export async function runLoad(
  baseUrl: string,
  target: Target,
  options: LoadOptions,
  hooks: LoadHooks = {},
): Promise<LoadResult> {
  await hooks.settle?.();
  if (options.warmup > 0) {
    await autocannon(autocannonOptions(baseUrl, target, options, options.warmup));
    await hooks.settle?.();
  }
  const cpuBefore = (await hooks.cpu?.()) ?? {};

  const latencies: number[] = [];
  const instance = autocannon(autocannonOptions(baseUrl, target, options, options.duration));
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  const cpuAfter = (await hooks.cpu?.()) ?? {};
  const cpuMsPerRequest: Record<string, number> = {};
  for (const [name, after] of Object.entries(cpuAfter)) {
    if (after.size === 0 || result.requests.total === 0) continue;
    let used = 0;
    for (const [pid, ms] of after) used += ms - (cpuBefore[name]?.get(pid) ?? 0);
    cpuMsPerRequest[name] = used / result.requests.total;
  }

  const sorted = Float64Array.from(latencies).sort();
  const details: string[] = [];
  if (result.non2xx > 0) {
    const codes = Object.entries(result.statusCodeStats)
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, { count }]) => `${count}x${code}`);
    details.push(`non-2xx ${codes.join(' ')}`);
  }
  if (result.errors > 0) details.push(`${result.errors} errors (${result.timeouts} timeouts)`);
  if (result.mismatches > 0) details.push(`${result.mismatches} bad bodies`);
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: result.non2xx + result.errors + result.mismatches,
    errorDetail: details.join(', '),
    requests: result.requests.total,
    seconds: result.duration,
    cpuMsPerRequest,
  };
}

/** One request with fetch: the parsed JSON answer, or a description of what went wrong. */
export async function sample(
  baseUrl: string,
  target: Target,
): Promise<{ ok: true; answer: unknown; text: string } | { ok: false; problem: string }> {
  const response = await fetch(`${baseUrl}${target.path}`, {
    method: target.method,
    headers: target.headers ?? {},
    ...(target.body !== undefined ? { body: target.body } : {}),
  });
  const text = await response.text();
  if (!response.ok) return { ok: false, problem: `HTTP ${response.status}: ${text.slice(0, 300)}` };
  if (!text.startsWith(target.prefix))
    return { ok: false, problem: `unexpected answer: ${text.slice(0, 300)}` };
  try {
    return { ok: true, answer: JSON.parse(text), text };
  } catch {
    return { ok: false, problem: `not JSON: ${text.slice(0, 300)}` };
  }
}
