import type { Config } from '../config.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import type { PageRequest } from '../domain/paging.js';
import {
  checkSourceFilter,
  InvalidSourceFilterError,
  type LabelMatcher,
  type SourceFilter,
} from '../domain/source.js';
import { endsBeforeStart, parseTimestamp } from '../domain/time.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { MetricStore } from '../store/metric-store.js';
import { jsonError, jsonResponse } from './json.js';

class ParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`);
  }
}

function timeParameter(params: URLSearchParams, name: string): Date | undefined {
  const value = params.get(name);
  if (value === null || value === '') return undefined;
  // Query parameters are text, so a bare number is epoch seconds.
  const parsed = parseTimestamp(value, true);
  if ('error' in parsed) throw new ParameterError(name, parsed.error);
  return new Date(parsed.ms);
}

function limitParameter(params: URLSearchParams, rest: Config['rest']): number {
  const value = params.get('limit');
  if (value === null || value === '') return rest.defaultLimit;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > rest.maxLimit) {
    throw new ParameterError('limit', `must be a whole number from 1 to ${rest.maxLimit}`);
  }
  return Number(value);
}

/** A label matcher as a `label` parameter writes it: name=value, name!=value, name=~regex, name!~regex. */
function labelMatcher(text: string): LabelMatcher {
  // Label names hold no = ! or ~: the first of them starts the operator.
  const at = text.search(/[=!~]/);
  const operator = (['!=', '!~', '=~', '='] as const).find((candidate) => text.startsWith(candidate, at));
  if (at <= 0 || !operator) {
    throw new ParameterError(
      'label',
      `"${text.slice(0, 40)}" is not name=value, name!=value, name=~regex or name!~regex`,
    );
  }
  return { name: text.slice(0, at), operator, value: text.slice(at + operator.length) };
}

/** The source filter of `source` and `label` parameters (each repeatable), or undefined for every source. */
function sourceFilterParameters(params: URLSearchParams): SourceFilter | undefined {
  const names = params.getAll('source');
  const labels = params.getAll('label').map(labelMatcher);
  if (names.length === 0 && labels.length === 0) return undefined;
  const filter: SourceFilter = {
    ...(names.length > 0 && { names }),
    ...(labels.length > 0 && { labels }),
  };
  const problem = checkSourceFilter(filter);
  if (problem) throw new ParameterError(problem.argument === 'sources' ? 'source' : 'label', problem.problem);
  return filter;
}

/**
 * `GET /api/metrics?start=&end=&limit=&cursor=&source=&label=`: the seed's endpoint, kept for its
 * clients. Rows with start <= timestamp <= end (inclusive, like the seed's BETWEEN) as
 * `[{ id, timestamp (epoch seconds), cpu_load, concurrency }]` (a value the sample does not hold is
 * null), ordered by time then source, at most `limit` of them; an RFC 8288
 * `Link: </api/metrics?...>; rel="next"` header (a path: relative to the request's URL) points at
 * the next page when there is one. `source` (names) and `label` (matchers) narrow the rows to some
 * sources, and then each row names its `source` too; without them, rows are as they always were.
 */
export async function legacyMetrics(
  request: Request,
  store: Pick<MetricStore, 'page' | 'selectSources' | 'sourcesByIds'>,
  config: Config,
  scope?: OperationScope,
): Promise<Response> {
  const url = new URL(request.url);
  const params = url.searchParams;
  let page: PageRequest;
  let filter: SourceFilter | undefined;
  try {
    const range = { start: timeParameter(params, 'start'), end: timeParameter(params, 'end') };
    if (endsBeforeStart(range)) throw new ParameterError('start', 'must not be after end');
    const size = limitParameter(params, config.rest);
    const cursorText = params.get('cursor');
    const cursor = cursorText ? decodeCursor(cursorText) : undefined;
    if (cursorText && !cursor)
      throw new ParameterError('cursor', 'is not a cursor from a Link header of this API');
    page = { range, endInclusive: true, after: cursor, direction: 'asc', size };
    filter = sourceFilterParameters(params);
  } catch (error) {
    if (error instanceof ParameterError) {
      return jsonError(400, 'Bad Request', error.message, { parameter: error.parameter });
    }
    throw error;
  }

  let sources: Awaited<ReturnType<MetricStore['selectSources']>>;
  try {
    sources = await store.selectSources(filter, scope);
  } catch (error) {
    if (error instanceof InvalidSourceFilterError) {
      return jsonError(400, 'Bad Request', `label: ${error.reason}`, { parameter: 'label' });
    }
    throw error;
  }
  const { rows, hasMore } = await store.page(page, sources, scope);
  const headers: Record<string, string> = {};
  const last = rows.at(-1);
  if (hasMore && last) {
    const next = new URL(url);
    next.searchParams.set('cursor', encodeCursor(last));
    // Relative: the request's Host header is the client's to choose, and a proxy may rewrite it.
    headers.link = `<${next.pathname}${next.search}>; rel="next"`;
  }
  const names = filter && (await store.sourcesByIds([...new Set(rows.map((row) => row.sourceId))], scope));
  return jsonResponse(
    rows.map((metric) => ({
      id: Number(metric.id),
      timestamp: metric.timestamp.getTime() / 1000,
      cpu_load: metric.cpuLoad,
      concurrency: metric.concurrency,
      ...(names && { source: names.get(metric.sourceId)?.name ?? null }),
    })),
    200,
    headers,
  );
}
