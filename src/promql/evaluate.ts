// Evaluation of a parsed query at one time or at every step of a range, the way Prometheus 2.42's
// engine does it: each selector's samples are read once for the whole range, then every node is
// evaluated for all steps, with per-step operations applied to the vector each step sees.

import { aggregate, type Sample } from './aggregations.js';
import { arithmetic, compare } from './arithmetic.js';
import type {
  Aggregation,
  BinaryOperation,
  Expr,
  InstantFunctionCall,
  MatrixSelector,
  RangeFunctionCall,
  UnaryOperation,
  VectorSelector,
} from './ast.js';
import { isComparison, typeOf } from './ast.js';
import { duplicateLabelsetError, PromQLError } from './errors.js';
import { formatFloat, type QueryData, toSeconds } from './format.js';
import { compareLabels, dropMetricName, type Labels, labelsKey, toLabels } from './labels.js';
import type { Matcher } from './matchers.js';
import { answerableFromMinutes, MINUTE_MS, type MinuteSeries, minuteWindows } from './minute-windows.js';
import { keepsMetricName, RANGE_FUNCTIONS } from './range-functions.js';

export interface RawSeries {
  /** Includes `__name__`. */
  labels: Record<string, string>;
  /** Milliseconds since the epoch, ascending. */
  timestamps: readonly number[];
  values: readonly number[];
}

export interface SeriesReader {
  /** Every series matching all matchers, with its samples whose timestamp t satisfies startMs <= t <= endMs. */
  select(matchers: readonly Matcher[], startMs: number, endMs: number): Promise<RawSeries[]>;
  /**
   * Optional: every series matching all matchers, with its statistics of the minutes starting in
   * [startMs, endMs) and its samples exactly at `instants`. Range functions over whole minutes at
   * whole minutes are then read from these (see minute-windows.ts).
   */
  selectMinutes?(
    matchers: readonly Matcher[],
    startMs: number,
    endMs: number,
    instants: readonly number[],
  ): Promise<MinuteSeries[]>;
}

export interface EvalLimits {
  /** Most samples the selectors of one query may load. */
  maxSamples: number;
  /** How far back an instant selector looks for a sample (Prometheus' --query.lookback-delta). */
  lookbackDeltaMs: number;
}

export const DEFAULT_LOOKBACK_DELTA_MS = 300_000;
/** Samples a query's range-function windows may scan, per sample it may read. */
const WINDOW_WORK_PER_SAMPLE = 20;
/** Prometheus' HTTP API refuses range queries with more steps than this. */
export const MAX_POINTS_PER_SERIES = 11_000;

/** A series as evaluated: one slot per step, undefined where the series has no value at that step. */
interface StepSeries {
  metric: Labels;
  values: Array<number | undefined>;
}

type Value =
  | { type: 'scalar'; values: number[] }
  | { type: 'vector'; series: StepSeries[] }
  | { type: 'string'; value: string };

interface LoadedSeries {
  metric: Labels;
  timestamps: readonly number[];
  values: readonly number[];
}

export async function evaluateInstant(
  expr: Expr,
  timeMs: number,
  reader: SeriesReader,
  limits: EvalLimits,
): Promise<QueryData> {
  const value = await new Evaluation([timeMs], reader, limits).run(expr);
  const time = toSeconds(timeMs);
  switch (value.type) {
    case 'scalar':
      return { resultType: 'scalar', result: [time, formatFloat(value.values[0] as number)] };
    case 'string':
      return { resultType: 'string', result: [time, value.value] };
    case 'vector':
      return {
        resultType: 'vector',
        result: value.series.flatMap(({ metric, values: [sample] }) =>
          sample === undefined ? [] : [{ metric, value: [time, formatFloat(sample)] }],
        ),
      };
  }
}

export async function evaluateRange(
  expr: Expr,
  startMs: number,
  endMs: number,
  stepMs: number,
  reader: SeriesReader,
  limits: EvalLimits,
): Promise<QueryData> {
  if (endMs < startMs) throw new PromQLError('bad_data', 'end timestamp must not be before start time');
  if (!(stepMs > 0)) {
    throw new PromQLError(
      'bad_data',
      'zero or negative query resolution step widths are not accepted. Try a positive integer',
    );
  }
  if ((endMs - startMs) / stepMs > MAX_POINTS_PER_SERIES) {
    throw new PromQLError(
      'bad_data',
      'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
    );
  }
  const type = typeOf(expr);
  if (type !== 'scalar' && type !== 'vector') {
    throw new PromQLError(
      'bad_data',
      `invalid expression type "${type === 'string' ? 'string' : 'range vector'}" for range query, must be Scalar or instant Vector`,
    );
  }
  const steps: number[] = [];
  // By index: an addition would stall where a float's spacing exceeds the step.
  const count = Math.floor((endMs - startMs) / stepMs);
  for (let i = 0; i <= count; i++) steps.push(startMs + i * stepMs);
  const value = await new Evaluation(steps, reader, limits).run(expr);
  const toPairs = (values: ReadonlyArray<number | undefined>): Array<[number, string]> =>
    values.flatMap((sample, i) =>
      sample === undefined ? [] : [[toSeconds(steps[i] as number), formatFloat(sample)] as [number, string]],
    );
  if (value.type === 'scalar') {
    return { resultType: 'matrix', result: [{ metric: {}, values: toPairs(value.values) }] };
  }
  if (value.type !== 'vector') throw new PromQLError('internal', 'a range query evaluated to a string');
  return {
    resultType: 'matrix',
    result: value.series
      .map((series) => ({ metric: series.metric, values: toPairs(series.values) }))
      .filter((series) => series.values.length > 0)
      .sort((a, b) => compareLabels(a.metric, b.metric)),
  };
}

class Evaluation {
  private readonly loaded = new Map<VectorSelector | MatrixSelector, LoadedSeries[]>();
  /** Range selectors read as minute statistics, sorted as `loaded` is. */
  private readonly minuteLoaded = new Map<MatrixSelector, MinuteSeries[]>();
  private loadedSamples = 0;

  constructor(
    private readonly steps: readonly number[],
    private readonly reader: SeriesReader,
    private readonly limits: EvalLimits,
  ) {}

  async run(expr: Expr): Promise<Value> {
    await this.load(expr);
    return this.evaluate(expr);
  }

  /** Reads every selector's samples once, over the widest window any step needs. */
  private async load(expr: Expr): Promise<void> {
    const first = this.steps[0] as number;
    const last = this.steps[this.steps.length - 1] as number;
    switch (expr.kind) {
      case 'vectorSelector':
        return this.select(
          expr,
          expr,
          first - expr.offsetMs - this.limits.lookbackDeltaMs,
          last - expr.offsetMs,
        );
      case 'matrixSelector': {
        const { selector, rangeMs } = expr;
        return this.select(expr, selector, first - selector.offsetMs - rangeMs, last - selector.offsetMs);
      }
      case 'rangeFunction': {
        if (expr.param) await this.load(expr.param);
        const { selector, rangeMs } = expr.range;
        const instants = this.steps.map((step) => step - selector.offsetMs);
        if (this.reader.selectMinutes && answerableFromMinutes(expr.func, rangeMs, instants)) {
          const series = await this.reader.selectMinutes(
            selector.matchers,
            first - selector.offsetMs - rangeMs,
            last - selector.offsetMs,
            instants,
          );
          for (const { minutes, exact } of series)
            this.count(minutes.length + exact.timestamps.length + this.steps.length);
          this.minuteLoaded.set(
            expr.range,
            series.sort((a, b) => compareLabels(toLabels(a.labels), toLabels(b.labels))),
          );
          return;
        }
        return this.load(expr.range);
      }
      case 'instantFunction':
        for (const arg of expr.args) await this.load(arg);
        return;
      case 'aggregation':
        if (expr.param) await this.load(expr.param);
        return this.load(expr.expr);
      case 'binary':
        await this.load(expr.lhs);
        return this.load(expr.rhs);
      case 'unary':
        return this.load(expr.expr);
      case 'number':
      case 'string':
        return;
    }
  }

  private async select(
    key: VectorSelector | MatrixSelector,
    selector: VectorSelector,
    startMs: number,
    endMs: number,
  ): Promise<void> {
    const series = await this.reader.select(selector.matchers, startMs, endMs);
    // A series costs its samples, and a value for each step once evaluated.
    for (const { timestamps } of series) this.count(timestamps.length + this.steps.length);
    // Storage hands Prometheus series sorted by labels; that order shows in instant results.
    const sorted = series
      .map(({ labels, timestamps, values }) => ({ metric: toLabels(labels), timestamps, values }))
      .sort((a, b) => compareLabels(a.metric, b.metric));
    this.loaded.set(key, sorted);
  }

  /**
   * Work the windows of range functions may take: each step's window is scanned, so a long
   * range at many steps costs far more than its samples; past this (in samples scanned) the
   * query is refused rather than holding the event loop.
   */
  private workLeft: number | undefined;

  private spend(scanned: number): void {
    this.workLeft = (this.workLeft ?? this.limits.maxSamples * WINDOW_WORK_PER_SAMPLE) - scanned;
    if (this.workLeft < 0) {
      throw new PromQLError(
        'execution',
        "query processing would scan too many samples: shorten the range functions' ranges or use fewer steps",
      );
    }
  }

  /** Counts samples (or minutes) read, and the values of their steps, against the limit. */
  private count(samples: number): void {
    this.loadedSamples += samples;
    if (this.loadedSamples > this.limits.maxSamples) {
      throw new PromQLError(
        'execution',
        'query processing would load too many samples into memory in query execution',
      );
    }
  }

  private evaluate(expr: Expr): Value {
    switch (expr.kind) {
      case 'number':
        return { type: 'scalar', values: this.steps.map(() => expr.value) };
      case 'string':
        return { type: 'string', value: expr.value };
      case 'vectorSelector':
        return { type: 'vector', series: this.instantSelection(expr) };
      case 'matrixSelector':
        throw new PromQLError('internal', 'a range vector outside a range function');
      case 'rangeFunction':
        return { type: 'vector', series: this.rangeFunction(expr) };
      case 'instantFunction':
        return this.instantFunction(expr);
      case 'aggregation':
        return { type: 'vector', series: this.aggregation(expr) };
      case 'binary':
        return this.binary(expr);
      case 'unary':
        return this.unary(expr);
    }
  }

  private scalar(expr: Expr): number[] {
    const value = this.evaluate(expr);
    if (value.type !== 'scalar') throw new PromQLError('internal', `expected a scalar, got ${value.type}`);
    return value.values;
  }

  private vector(expr: Expr): StepSeries[] {
    const value = this.evaluate(expr);
    if (value.type !== 'vector') throw new PromQLError('internal', `expected a vector, got ${value.type}`);
    return value.series;
  }

  /** At each step t, the latest sample in [t - lookback, t] (2.42 includes both ends). */
  private instantSelection(selector: VectorSelector): StepSeries[] {
    const output: StepSeries[] = [];
    for (const { metric, timestamps, values } of this.loaded.get(selector) ?? []) {
      const stepValues: Array<number | undefined> = [];
      let latest = -1;
      for (const step of this.steps) {
        const reference = step - selector.offsetMs;
        while (latest + 1 < timestamps.length && (timestamps[latest + 1] as number) <= reference) latest++;
        const inLookback =
          latest >= 0 && (timestamps[latest] as number) >= reference - this.limits.lookbackDeltaMs;
        stepValues.push(inLookback ? values[latest] : undefined);
      }
      if (stepValues.some((value) => value !== undefined)) output.push({ metric, values: stepValues });
    }
    return output;
  }

  /** At each step t, the function over the samples in [t - range, t] (2.42 includes both ends). */
  private rangeFunction(call: RangeFunctionCall): StepSeries[] {
    const phi = call.param ? this.scalar(call.param) : undefined;
    const windowFunction = RANGE_FUNCTIONS[call.func];
    const { selector, rangeMs } = call.range;
    const output: StepSeries[] = [];
    const instants = this.steps.map((step) => step - selector.offsetMs);
    for (const series of this.minuteLoaded.get(call.range) ?? []) {
      this.spend((rangeMs / MINUTE_MS) * instants.length);
      const stepValues = minuteWindows(call.func, series, instants, rangeMs);
      if (stepValues.some((value) => value !== undefined)) {
        const metric = toLabels(series.labels);
        output.push({
          metric: keepsMetricName(call.func) ? metric : dropMetricName(metric),
          values: stepValues,
        });
      }
    }
    for (const { metric, timestamps, values } of this.loaded.get(call.range) ?? []) {
      const stepValues: Array<number | undefined> = [];
      let from = 0;
      let to = 0;
      this.steps.forEach((step, i) => {
        const reference = step - selector.offsetMs;
        while (to < timestamps.length && (timestamps[to] as number) <= reference) to++;
        while (from < to && (timestamps[from] as number) < reference - rangeMs) from++;
        this.spend(to - from);
        stepValues.push(
          to > from ? windowFunction(values.slice(from, to), phi?.[i] ?? Number.NaN) : undefined,
        );
      });
      if (stepValues.some((value) => value !== undefined)) {
        output.push({
          metric: keepsMetricName(call.func) ? metric : dropMetricName(metric),
          values: stepValues,
        });
      }
    }
    assertDistinctLabelsets(output);
    return output;
  }

  private instantFunction(call: InstantFunctionCall): Value {
    const [arg] = call.args;
    switch (call.func) {
      case 'time':
        return { type: 'scalar', values: this.steps.map((step) => toSeconds(step)) };
      case 'vector': {
        const values = this.scalar(arg as Expr);
        return { type: 'vector', series: [{ metric: {}, values }] };
      }
      case 'scalar': {
        const input = this.vector(arg as Expr);
        const values = this.steps.map((_, i) => {
          const present = samplesAt(input, i);
          return present.length === 1 ? (present[0] as Sample).value : Number.NaN;
        });
        return { type: 'scalar', values };
      }
    }
  }

  private aggregation(expr: Aggregation): StepSeries[] {
    const param = expr.param ? this.scalar(expr.param) : undefined;
    const input = this.vector(expr.expr);
    return this.perStep((i) => aggregate(expr.op, param?.[i], samplesAt(input, i), expr.grouping));
  }

  private binary(expr: BinaryOperation): Value {
    const { op, returnBool } = expr;
    const lhsIsVector = typeOf(expr.lhs) === 'vector';
    const rhsIsVector = typeOf(expr.rhs) === 'vector';
    if (!lhsIsVector && !rhsIsVector) {
      const lhs = this.scalar(expr.lhs);
      const rhs = this.scalar(expr.rhs);
      const values = lhs.map((left, i) => {
        const right = rhs[i] as number;
        // The parser only lets scalars be compared with `bool`.
        if (isComparison(op)) return compare(op, left, right) ? 1 : 0;
        return arithmetic(op, left, right);
      });
      return { type: 'scalar', values };
    }
    if (lhsIsVector && rhsIsVector) throw new PromQLError('internal', 'vector-to-vector operation');
    // Prometheus' VectorscalarBinop: the vector operand, and whether it was written on the right.
    const swapped = rhsIsVector;
    const vector = this.vector(swapped ? expr.rhs : expr.lhs);
    const scalar = this.scalar(swapped ? expr.lhs : expr.rhs);
    const series = this.perStep((i) => {
      const output: Sample[] = [];
      for (const sample of samplesAt(vector, i)) {
        const scalarValue = scalar[i] as number;
        const [left, right] = swapped ? [scalarValue, sample.value] : [sample.value, scalarValue];
        if (!isComparison(op)) {
          output.push({ metric: dropMetricName(sample.metric), value: arithmetic(op, left, right) });
          continue;
        }
        const holds = compare(op, left, right);
        if (returnBool) output.push({ metric: dropMetricName(sample.metric), value: holds ? 1 : 0 });
        // A filtering comparison keeps the vector element's value, whichever side it was on.
        else if (holds) output.push(sample);
      }
      return output;
    });
    return { type: 'vector', series };
  }

  private unary(expr: UnaryOperation): Value {
    const value = this.evaluate(expr.expr);
    if (expr.op === '+') return value;
    if (value.type === 'scalar') return { type: 'scalar', values: value.values.map((v) => -v) };
    if (value.type !== 'vector') throw new PromQLError('internal', 'negating a string');
    const series = value.series.map(({ metric, values }) => ({
      metric: dropMetricName(metric),
      values: values.map((v) => (v === undefined ? undefined : -v)),
    }));
    assertDistinctLabelsets(series);
    return { type: 'vector', series };
  }

  /** Runs a per-step operation and gathers its outputs into series, in order of first appearance. */
  private perStep(operation: (stepIndex: number) => Sample[]): StepSeries[] {
    const byLabels = new Map<string, StepSeries>();
    this.steps.forEach((_, i) => {
      const samples = operation(i);
      const keys = samples.map((sample) => labelsKey(sample.metric));
      if (new Set(keys).size !== keys.length) throw duplicateLabelsetError();
      samples.forEach((sample, j) => {
        const key = keys[j] as string;
        let series = byLabels.get(key);
        if (!series) {
          series = {
            metric: sample.metric,
            values: new Array<number | undefined>(this.steps.length).fill(undefined),
          };
          byLabels.set(key, series);
        }
        series.values[i] = sample.value;
      });
    });
    return [...byLabels.values()];
  }
}

/** The instant vector one step sees: the series with a value at that step, in series order. */
function samplesAt(series: readonly StepSeries[], stepIndex: number): Sample[] {
  const samples: Sample[] = [];
  for (const { metric, values } of series) {
    const value = values[stepIndex];
    if (value !== undefined) samples.push({ metric, value });
  }
  return samples;
}

function assertDistinctLabelsets(series: readonly StepSeries[]): void {
  const keys = new Set(series.map(({ metric }) => labelsKey(metric)));
  if (keys.size !== series.length) throw duplicateLabelsetError();
}
