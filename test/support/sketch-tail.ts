// The oracle of the rollup_sketch_tails migration's metric_sketch_tail, for the tests of what
// reads the tails.
import { type QuantileSketch, type SketchTail, sketchCount } from '../../src/domain/quantile-sketch.js';

/**
 * A sketch's tail as the rollup_sketch_tails migration's metric_sketch_tail makes it: the first key
 * at or past each fraction of the values, with how many lie past it.
 */
export function sketchTail({ keys, counts }: QuantileSketch): SketchTail {
  const total = sketchCount({ keys, counts });
  const tail = [total];
  let seen = 0;
  let step = 0;
  const fractions = [0.5, 0.75, 0.9, 0.95, 0.97, 0.98, 0.99, 1];
  for (let index = 0; index < keys.length && step < fractions.length; index++) {
    seen += counts[index] as number;
    if (seen < Math.ceil(total * (fractions[step] as number))) continue;
    tail.push(keys[index] as number, total - seen);
    while (step < fractions.length && seen >= Math.ceil(total * (fractions[step] as number))) step++;
  }
  return tail;
}
