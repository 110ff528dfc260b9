// A PromQL subset, evaluated as Prometheus 2.42 evaluates it, for the service's read API.
export type {
  AggregationOp,
  ArithmeticOp,
  ComparisonOp,
  Expr,
  Grouping,
  InstantFunctionName,
  RangeFunctionName,
  ValueType,
} from './ast.js';
export { typeOf } from './ast.js';
export { PromQLError, type PromQLErrorType } from './errors.js';
export {
  DEFAULT_LOOKBACK_DELTA_MS,
  type EvalLimits,
  evaluateInstant,
  evaluateRange,
  MAX_POINTS_PER_SERIES,
  type RawSeries,
  type SeriesReader,
} from './evaluate.js';
export { formatFloat, type QueryData, type SamplePair } from './format.js';
export type { Labels } from './labels.js';
export { parseDuration } from './literals.js';
export { type Matcher, type MatchOperator, seriesFilter, valueTest } from './matchers.js';
export { MINUTE_MS, type MinuteSeries } from './minute-windows.js';
export { parseQuery } from './syntax.js';
