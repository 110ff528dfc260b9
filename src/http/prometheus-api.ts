/**
 * A Prometheus-compatible read API (the HTTP API of Prometheus 2.42, read-only), so that Grafana
 * reads the stored samples as a Prometheus data source: `cpu_load` and `concurrency` series, each
 * labelled with its `source` and the source's labels, queried in a PromQL subset (src/promql).
 * Every answer has Prometheus' envelope: `{status: "success", data}` or `{status: "error",
 * errorType, error}`.
 */
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import { METRIC_HELP, PROMETHEUS_METRICS } from '../domain/prometheus-names.js';
import { InvalidSourceFilterError } from '../domain/source.js';
import { DECIMAL, quotedPrefix } from '../domain/time.js';
import { buildInfo } from '../observability/build-info.js';
import type { Logger } from '../observability/logger.js';
import type { OperationScope } from '../observability/operation-scope.js';
import {
  DEFAULT_LOOKBACK_DELTA_MS,
  type EvalLimits,
  evaluateInstant,
  evaluateRange,
  type Matcher,
  type MinuteSeries,
  PromQLError,
  parseDuration,
  parseQuery,
  type RawSeries,
  type SeriesReader,
} from '../promql/index.js';
import { DatabaseUnavailableError } from '../store/errors.js';
import type { MetricStore } from '../store/metric-store.js';
import { TooManySamplesError, TooManySeriesError } from '../store/prometheus-reads.js';
import { clientAddress } from './client-address.js';
import type { ExpensiveWorkSlots } from './expensive-work-slots.js';
import { jsonResponse } from './json.js';
import { readAtMost } from './request-body.js';

export const PROMETHEUS_API_PATHS = [
  '/api/v1/query',
  '/api/v1/query_range',
  '/api/v1/labels',
  '/api/v1/series',
  '/api/v1/metadata',
  '/api/v1/status/buildinfo',
  '/api/v1/query_exemplars',
] as const;
/** `/api/v1/label/<name>/values`. */
export const LABEL_VALUES_PREFIX = '/api/v1/label/';
const LABEL_VALUES = /^\/api\/v1\/label\/([^/]+)\/values$/;

/** CPU loads are stored as 32-bit floats: about seven significant digits. */
const FLOAT32_DIGITS = 7;

/** The Prometheus version whose API this one follows: Grafana chooses its requests by it. */
const PROMETHEUS_VERSION = '2.42.0';

type ErrorType = 'bad_data' | 'execution' | 'timeout' | 'canceled' | 'internal' | 'unavailable' | 'not_found';
const STATUS_OF: Readonly<Record<ErrorType, number>> = {
  bad_data: 400,
  execution: 422,
  canceled: 499,
  timeout: 503,
  unavailable: 503,
  internal: 500,
  not_found: 404,
};

class ApiError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}

const success = (data: unknown) => jsonResponse({ status: 'success', data });
const failure = (type: ErrorType, message: string) =>
  jsonResponse({ status: 'error', errorType: type, error: message }, STATUS_OF[type]);

/** The request's parameters: the query string, and a form body for POST (as Grafana sends). */
async function parametersOf(request: Request, maxBodyBytes: number): Promise<URLSearchParams> {
  const parameters = new URL(request.url).searchParams;
  if (request.method !== 'POST' || !request.body) return parameters;
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new ApiError(
      'bad_data',
      'send parameters in the query string or as application/x-www-form-urlencoded',
    );
  const body = await readAtMost(request.body, maxBodyBytes);
  if (body === undefined)
    throw new ApiError('bad_data', `request bodies are limited to ${maxBodyBytes} bytes`);
  for (const [name, value] of new URLSearchParams(body.toString())) parameters.append(name, value);
  return parameters;
}

const MAX_DATE_MS = 8.64e15;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** A time parameter (Unix seconds, or RFC 3339), in milliseconds; `fallback` when absent. */
function timeParameter(parameters: URLSearchParams, name: string, fallback?: number): number {
  const text = parameters.get(name);
  if (text === null || text === '') {
    if (fallback !== undefined) return fallback;
    throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "" to a valid timestamp`);
  }
  const ms = DECIMAL.test(text) ? Number(text) * 1000 : RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  // Within the dates JavaScript holds (±275,000 years): steps stay whole milliseconds apart.
  if (!(Math.abs(ms) <= MAX_DATE_MS))
    throw new ApiError(
      'bad_data',
      `invalid parameter "${name}": cannot parse ${quotedPrefix(text)} to a valid timestamp`,
    );
  return Math.round(ms);
}

/** A duration parameter (seconds, or a Prometheus duration such as `15s` or `1m30s`), in milliseconds. */
function durationParameter(parameters: URLSearchParams, name: string): number {
  const text = parameters.get(name) ?? '';
  const ms = DECIMAL.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || !Number.isFinite(ms))
    throw new ApiError(
      'bad_data',
      `invalid parameter "${name}": cannot parse ${quotedPrefix(text)} to a valid duration`,
    );
  return Math.round(ms);
}

/** The longest query taken: Grafana's are a few hundred characters; the parser recurses with nesting. */
const MAX_QUERY_LENGTH = 10_000;

/** A PromQL text parsed: its errors, and too deep a nesting for the parser's stack, are bad_data. */
function parsed(text: string, parameter: string) {
  if (text.length > MAX_QUERY_LENGTH)
    throw new ApiError(
      'bad_data',
      `invalid parameter "${parameter}": longer than ${MAX_QUERY_LENGTH} characters`,
    );
  try {
    return parseQuery(text);
  } catch (error) {
    if (error instanceof PromQLError)
      throw new ApiError('bad_data', `invalid parameter "${parameter}": ${error.message}`);
    if (error instanceof RangeError)
      throw new ApiError('bad_data', `invalid parameter "${parameter}": nested too deeply`);
    throw error;
  }
}

function queryParameter(parameters: URLSearchParams) {
  return parsed(parameters.get('query') ?? '', 'query');
}

/** The most `match[]` selectors one request may give: each is a statement. */
const MAX_SELECTORS = 100;

/** The selectors of `match[]`, each a vector selector, as matchers; none given: every series. */
function selectorsOf(parameters: URLSearchParams, required: boolean): (readonly Matcher[])[] {
  const texts = parameters.getAll('match[]');
  if (texts.length === 0) {
    if (required) throw new ApiError('bad_data', 'no match[] parameter provided');
    return [[]];
  }
  if (texts.length > MAX_SELECTORS)
    throw new ApiError(
      'bad_data',
      `at most ${MAX_SELECTORS} match[] selectors a request, got ${texts.length}`,
    );
  return texts.map((text) => {
    const expr = parsed(text, 'match[]');
    if (expr.kind !== 'vectorSelector')
      throw new ApiError(
        'bad_data',
        `invalid parameter "match[]": ${quotedPrefix(text)} is not a series selector`,
      );
    return expr.matchers;
  });
}

/** The label name of a `/api/v1/label/<name>/values` path, percent-decoded. */
function labelNameOf(path: string): string {
  const encoded = LABEL_VALUES.exec(path)?.[1] ?? '';
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new ApiError(
      'bad_data',
      `invalid label name: ${quotedPrefix(encoded)} is not percent-encoded text`,
    );
  }
}

/** The optional start and end of the metadata endpoints, as a range. */
function rangeOf(parameters: URLSearchParams): { startMs: number; endMs: number } | undefined {
  if (!parameters.get('start') && !parameters.get('end')) return undefined;
  return {
    startMs: timeParameter(parameters, 'start', Number.MIN_SAFE_INTEGER),
    endMs: timeParameter(parameters, 'end', Number.MAX_SAFE_INTEGER),
  };
}

export interface PrometheusApiOptions {
  config: Config;
  store: MetricStore;
  logger: Logger;
  slots: ExpensiveWorkSlots;
  scopeOf: (request: Request) => OperationScope | undefined;
}

/**
 * The series reader a query evaluates over: the store's series of each selector, then their
 * samples by metric, the query's samples counted against PROMETHEUS_MAX_SAMPLES in all.
 */
function storeReader(store: MetricStore, config: Config, scope: OperationScope | undefined): SeriesReader {
  let samplesLeft = config.prometheus.maxSamples;
  const reads = store.prometheus;
  /** The series the matchers select, by field. */
  const selected = async (matchers: readonly Matcher[], startMs: number, endMs: number) => {
    const series = await reads.series(matchers, { startMs, endMs }, config.prometheus.maxSeries, scope);
    return Object.values(PROMETHEUS_METRICS)
      .map((field) => ({ field, ofField: series.filter((one) => one.field === field) }))
      .filter(({ ofField }) => ofField.length > 0);
  };
  return {
    async select(matchers, startMs, endMs) {
      const result: RawSeries[] = [];
      for (const { field, ofField } of await selected(matchers, startMs, endMs)) {
        const ids = ofField.map((one) => one.sourceId);
        const samples = await reads.samples(ids, field, startMs, endMs, samplesLeft, scope);
        for (const one of ofField) {
          const found = samples.get(one.sourceId) ?? { timestamps: [], values: [] };
          samplesLeft -= found.timestamps.length;
          result.push({ labels: one.labels, ...found });
        }
      }
      return result;
    },
    async selectMinutes(matchers, startMs, endMs, instants) {
      const result: MinuteSeries[] = [];
      for (const { field, ofField } of await selected(matchers, startMs, endMs)) {
        const ids = ofField.map((one) => one.sourceId);
        const minutes = await reads.minutes(ids, field, startMs, endMs, samplesLeft, scope);
        const exact = await reads.samplesAt(ids, field, instants, scope);
        for (const one of ofField) {
          const found = minutes.get(one.sourceId) ?? {
            minutes: [],
            counts: [],
            sums: [],
            mins: [],
            maxs: [],
          };
          samplesLeft -= found.minutes.length;
          result.push({
            labels: one.labels,
            ...found,
            exact: exact.get(one.sourceId) ?? { timestamps: [], values: [] },
            ...(field === 'cpuLoad' ? { precision: FLOAT32_DIGITS } : {}),
          });
        }
      }
      return result;
    },
  };
}

/** Serves the read API's paths; the read access plugin before it guards them as it guards GraphQL. */
export function usePrometheusApi(options: PrometheusApiOptions): Plugin {
  const { config, store, logger, slots, scopeOf } = options;
  const limits: EvalLimits = {
    maxSamples: config.prometheus.maxSamples,
    lookbackDeltaMs: DEFAULT_LOOKBACK_DELTA_MS,
  };
  const maxBodyBytes = config.limits.maxBodyBytes;

  /**
   * The answer to `path`: what reads the database runs in one of the client's slots for
   * expensive work (`expensive`); the parameters, read before, hold none while they arrive.
   */
  async function answer(
    parameters: URLSearchParams,
    path: string,
    scope: OperationScope | undefined,
    expensive: <T>(work: () => Promise<T>) => Promise<T>,
  ) {
    const reads = store.prometheus;
    const maxSeries = config.prometheus.maxSeries;
    switch (path) {
      case '/api/v1/query': {
        const expr = queryParameter(parameters);
        const time = timeParameter(parameters, 'time', Date.now());
        return expensive(() => evaluateInstant(expr, time, storeReader(store, config, scope), limits));
      }
      case '/api/v1/query_range': {
        const expr = queryParameter(parameters);
        const start = timeParameter(parameters, 'start');
        const end = timeParameter(parameters, 'end');
        const step = durationParameter(parameters, 'step');
        return expensive(() =>
          evaluateRange(expr, start, end, step, storeReader(store, config, scope), limits),
        );
      }
      case '/api/v1/labels': {
        const selectors = selectorsOf(parameters, false);
        const range = rangeOf(parameters);
        const names = new Set<string>();
        await expensive(async () => {
          for (const matchers of selectors)
            for (const name of await reads.labelNames(matchers, range, scope)) names.add(name);
        });
        return [...names].sort();
      }
      case '/api/v1/series': {
        const selectors = selectorsOf(parameters, true);
        const range = rangeOf(parameters);
        const found = new Map<string, Record<string, string>>();
        await expensive(async () => {
          for (const matchers of selectors) {
            // The limit holds for the whole answer, over all its selectors.
            for (const series of await reads.series(matchers, range, maxSeries - found.size, scope))
              found.set(JSON.stringify(Object.entries(series.labels)), series.labels);
          }
        });
        return [...found.values()];
      }
      case '/api/v1/metadata': {
        const only = parameters.get('metric');
        return Object.fromEntries(
          Object.keys(PROMETHEUS_METRICS)
            .filter((metric) => only === null || only === '' || only === metric)
            .map((metric) => [metric, [{ type: 'gauge', help: METRIC_HELP[metric], unit: '' }]]),
        );
      }
      case '/api/v1/query_exemplars':
        // No exemplars are stored; Grafana's Explore asks with every query.
        return [];
      case '/api/v1/status/buildinfo':
        return {
          version: PROMETHEUS_VERSION,
          revision: buildInfo.commit,
          branch: '',
          buildUser: '',
          buildDate: '',
          goVersion: '',
          application: `metrics-api ${buildInfo.version}`,
        };
      default: {
        const name = labelNameOf(path);
        const selectors = selectorsOf(parameters, false);
        const range = rangeOf(parameters);
        const values = new Set<string>();
        await expensive(async () => {
          for (const matchers of selectors)
            for (const value of await reads.labelValues(name, matchers, range, maxSeries, scope))
              values.add(value);
        });
        return [...values].sort();
      }
    }
  }

  function failed(error: unknown, path: string, request: Request): Response {
    // The client went away while its request waited for a slot: nothing went wrong here.
    if (request.signal.aborted) return failure('canceled', 'the request was canceled');
    if (error instanceof ApiError) return failure(error.type, error.message);
    if (error instanceof PromQLError) return failure(error.type, error.message);
    if (error instanceof TooManySeriesError || error instanceof TooManySamplesError)
      return failure('execution', error.message);
    if (error instanceof InvalidSourceFilterError)
      return failure('bad_data', `invalid regular expression: ${error.reason}`);
    if (error instanceof DatabaseUnavailableError)
      return failure('unavailable', 'the database is unavailable; retry later');
    logger.error({ err: error, path }, 'Prometheus API request failed');
    return failure('internal', 'unexpected error');
  }

  return {
    onRequest({ request, url, endResponse, serverContext }) {
      const path = url.pathname;
      const known = (PROMETHEUS_API_PATHS as readonly string[]).includes(path) || LABEL_VALUES.test(path);
      if (!known) return;
      if (request.method !== 'GET' && request.method !== 'POST') {
        const response = failure('bad_data', `${path} accepts GET and POST`);
        response.headers.set('allow', 'GET, POST');
        endResponse(new Response(response.body, { status: 405, headers: response.headers }));
        return;
      }
      const client = clientAddress(
        request,
        serverContext as Parameters<typeof clientAddress>[1],
        config.http.clientAddressHeader,
      );
      const expensive = <T>(work: () => Promise<T>) => slots.run(client, work, request.signal);
      return parametersOf(request, maxBodyBytes)
        .then((parameters) => answer(parameters, path, scopeOf(request), expensive))
        .then(success, (error: unknown) => failed(error, path, request))
        .then(endResponse);
    },
  };
}
