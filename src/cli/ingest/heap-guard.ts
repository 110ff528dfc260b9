import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Returns a function to call after each batch that keeps the heap from growing with the input.
 * V8 sizes its heap for throughput and lets garbage pile up while it can: each batch's query text
 * is copied several times inside Prisma, those copies outlive the young generation while the
 * query runs, and the old generation grew by about 100 MB per million rows before V8 chose to
 * collect it. A full collection whenever the heap has grown by HEAP_SLACK bytes since the last one
 * costs a few milliseconds and keeps the resident set flat. `gc` is only reachable with the
 * --expose-gc flag, which can still be turned on at run time for contexts created afterwards.
 */
const HEAP_SLACK = 24 * 1024 * 1024;
export function heapGuard(): () => void {
  let collect: (() => void) | undefined;
  try {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
  let floor = process.memoryUsage().heapUsed;
  return () => {
    if (process.memoryUsage().heapUsed - floor < HEAP_SLACK) return;
    collect?.();
    floor = process.memoryUsage().heapUsed;
  };
}
