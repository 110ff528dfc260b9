// Aggregation over one step's instant vector, as Prometheus 2.42's evaluator.aggregation does it:
// groups in order of first appearance, plain float summation for sum, an incremental mean for avg,
// and Go heaps for topk/bottomk so ties resolve the same way.
import type { AggregationOp, Grouping } from './ast.js';
import { PromQLError } from './errors.js';
import { goSort, heapPop, heapPush, type Less } from './go-order.js';
import { dropMetricName, keepLabels, type Labels, labelsKey, removeLabels } from './labels.js';
import { quantile } from './quantile.js';

export interface Sample {
  metric: Labels;
  value: number;
}

interface Group {
  labels: Labels;
  value: number;
  mean: number;
  count: number;
  /** topk/bottomk candidates, or every sample for quantile. */
  heap: Sample[];
}

/** topk's min-heap order (NaN lowest), and its mirror for bottomk. */
const lowestFirst: Less<Sample> = (a, b) => Number.isNaN(a.value) || a.value < b.value;
const highestFirst: Less<Sample> = (a, b) => Number.isNaN(a.value) || a.value > b.value;

const MAX_INT64 = 2 ** 63;

/** Go's %v for a float in Prometheus' overflow message. */
function describeFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function groupLabels(metric: Labels, grouping: Grouping): Labels {
  if (grouping.mode === 'without') return removeLabels(dropMetricName(metric), grouping.labels);
  return keepLabels(metric, grouping.labels);
}

export function aggregate(
  op: AggregationOp,
  param: number | undefined,
  input: readonly Sample[],
  grouping: Grouping,
): Sample[] {
  let k = 0;
  if (op === 'topk' || op === 'bottomk') {
    const requested = param ?? Number.NaN;
    if (!(requested <= MAX_INT64 && requested >= -MAX_INT64)) {
      throw new PromQLError('execution', `Scalar value ${describeFloat(requested)} overflows int64`);
    }
    k = Math.trunc(requested);
    if (k < 1) return [];
  }
  const less = op === 'topk' ? lowestFirst : highestFirst;

  const groups = new Map<string, Group>();
  for (const sample of input) {
    const labels = groupLabels(sample.metric, grouping);
    const key = labelsKey(labels);
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { labels, value: sample.value, mean: sample.value, count: 1, heap: [sample] });
      continue;
    }
    switch (op) {
      case 'sum':
        group.value += sample.value;
        break;
      case 'avg':
        group.count++;
        if (!Number.isFinite(group.mean) && !Number.isNaN(group.mean)) {
          // An infinite mean stays as it is unless an opposite infinity or NaN arrives.
          const sameInfinity =
            !Number.isFinite(sample.value) &&
            !Number.isNaN(sample.value) &&
            group.mean > 0 === sample.value > 0;
          if (sameInfinity || Number.isFinite(sample.value)) break;
        }
        // Dividing each term first avoids overflowing float64.
        group.mean += sample.value / group.count - group.mean / group.count;
        break;
      case 'count':
        group.count++;
        break;
      case 'max':
        if (group.value < sample.value || Number.isNaN(group.value)) group.value = sample.value;
        break;
      case 'min':
        if (group.value > sample.value || Number.isNaN(group.value)) group.value = sample.value;
        break;
      case 'quantile':
        group.heap.push(sample);
        break;
      case 'topk':
      case 'bottomk': {
        const top = group.heap[0] as Sample;
        const beatsTop =
          op === 'topk'
            ? top.value < sample.value || Number.isNaN(top.value)
            : top.value > sample.value || Number.isNaN(top.value);
        if (group.heap.length < k || beatsTop) {
          if (group.heap.length === k) {
            if (k === 1) {
              group.heap[0] = sample;
              break;
            }
            heapPop(group.heap, less);
          }
          heapPush(group.heap, less, sample);
        }
        break;
      }
    }
  }

  const output: Sample[] = [];
  for (const group of groups.values()) {
    switch (op) {
      case 'topk':
      case 'bottomk': {
        // The heap keeps the weakest candidate on top; Prometheus reverses it for output.
        if (group.heap.length > 1) goSort(group.heap, (a, b) => less(b, a));
        output.push(...group.heap);
        continue;
      }
      case 'avg':
        output.push({ metric: group.labels, value: group.mean });
        continue;
      case 'count':
        output.push({ metric: group.labels, value: group.count });
        continue;
      case 'quantile':
        output.push({
          metric: group.labels,
          value: quantile(
            param ?? Number.NaN,
            group.heap.map((sample) => sample.value),
          ),
        });
        continue;
      default:
        output.push({ metric: group.labels, value: group.value });
    }
  }
  return output;
}
