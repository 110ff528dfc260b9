// Go's container/heap and sort.Sort as Prometheus 2.42 (built with Go 1.19) runs them. topk and
// bottomk pick and order tied values by exactly these steps, so they are reproduced step for step.

/** Whether element i should sort before element j (Go's sort.Interface Less). */
export type Less<T> = (a: T, b: T) => boolean;

function swap<T>(items: T[], i: number, j: number): void {
  const item = items[i] as T;
  items[i] = items[j] as T;
  items[j] = item;
}

function up<T>(heap: T[], less: Less<T>, start: number): void {
  let j = start;
  for (;;) {
    const i = Math.trunc((j - 1) / 2);
    if (i === j || !less(heap[j] as T, heap[i] as T)) break;
    swap(heap, i, j);
    j = i;
  }
}

function down<T>(heap: T[], less: Less<T>, start: number, n: number): void {
  let i = start;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= n) break;
    let j = left;
    const right = left + 1;
    if (right < n && less(heap[right] as T, heap[left] as T)) j = right;
    if (!less(heap[j] as T, heap[i] as T)) break;
    swap(heap, i, j);
    i = j;
  }
}

export function heapPush<T>(heap: T[], less: Less<T>, item: T): void {
  heap.push(item);
  up(heap, less, heap.length - 1);
}

export function heapPop<T>(heap: T[], less: Less<T>): T | undefined {
  const last = heap.length - 1;
  swap(heap, 0, last);
  down(heap, less, 0, last);
  return heap.pop();
}

/** Go 1.19 sort.Sort: pdqsort, which is insertion sort up to 12 elements. */
const GO_INSERTION_SORT_MAX = 12;

export function goSort<T>(items: T[], less: Less<T>): void {
  if (items.length <= GO_INSERTION_SORT_MAX) {
    for (let i = 1; i < items.length; i++) {
      for (let j = i; j > 0 && less(items[j] as T, items[j - 1] as T); j--) swap(items, j, j - 1);
    }
    return;
  }
  // pdqsort's larger-input path is not reproduced: ties may come out in another order.
  items.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0));
}
