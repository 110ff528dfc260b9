import { type Batch, isMissingConcurrency, isMissingLoad } from './sample-batch.js';

/**
 * A batch in PostgreSQL's binary COPY format, for (source_id integer, "timestamp" timestamptz,
 * cpu_load real, concurrency integer): fixed-width fields, so the server parses no text and the
 * client formats none (no ISO dates, no shortest-decimal floats). `real` travels as the float4
 * nearest to the double, which is what `Math.fround` gives and what the column keeps; a missing
 * value as NULL (a field of length -1). Each row's source id is the batch's `sourceIds`.
 * https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4
 */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 4 + 4;
/** A row with both values; a NULL value is 4 bytes shorter. */
const LARGEST_TUPLE_BYTES = 2 + (4 + 4) + (4 + 8) + (4 + 4) + (4 + 4);
const TRAILER_BYTES = 2;
const NULL_FIELD = -1;

/** timestamptz counts microseconds from 2000-01-01T00:00:00Z. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_TO_32 = 2 ** 32;

/**
 * A batch writer fills the same two batches again and again: each keeps its buffer, so a long load
 * allocates two buffers, not one per batch (each lives until COPY has sent it, long enough to reach
 * V8's old generation).
 */
const buffers = new WeakMap<Batch, Buffer>();

export function encodeBinaryCopy(batch: Batch): Buffer {
  const { timestamps, loads, concurrencies, sourceIds, length } = batch;
  const largest = HEADER_BYTES + length * LARGEST_TUPLE_BYTES + TRAILER_BYTES;
  let buffer = buffers.get(batch);
  if (!buffer || buffer.length < largest) {
    buffer = Buffer.allocUnsafe(HEADER_BYTES + batch.capacity * LARGEST_TUPLE_BYTES + TRAILER_BYTES);
    buffers.set(batch, buffer);
  }
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  SIGNATURE.copy(buffer, 0);
  view.setInt32(SIGNATURE.length, 0); // flags: no OIDs
  view.setInt32(SIGNATURE.length + 4, 0); // no header extension
  let at = HEADER_BYTES;
  for (let i = 0; i < length; i++) {
    view.setInt16(at, 4);
    view.setInt32(at + 2, 4);
    view.setInt32(at + 6, sourceIds[i] as number);
    view.setInt32(at + 10, 8);
    // Milliseconds times 1000 can pass 2^53 (after the year 2285), so the 64-bit product is
    // built from 32-bit halves, each step exact in a double.
    const ms = (timestamps[i] as number) - POSTGRES_EPOCH_MS;
    const high = Math.floor(ms / TWO_TO_32);
    const lowMicros = (ms - high * TWO_TO_32) * 1000;
    const carry = Math.floor(lowMicros / TWO_TO_32);
    view.setInt32(at + 14, high * 1000 + carry);
    view.setUint32(at + 18, lowMicros - carry * TWO_TO_32);
    at += 22;
    const load = loads[i] as number;
    if (isMissingLoad(load)) {
      view.setInt32(at, NULL_FIELD);
      at += 4;
    } else {
      view.setInt32(at, 4);
      view.setFloat32(at + 4, load);
      at += 8;
    }
    const concurrency = concurrencies[i] as number;
    if (isMissingConcurrency(concurrency)) {
      view.setInt32(at, NULL_FIELD);
      at += 4;
    } else {
      view.setInt32(at, 4);
      view.setInt32(at + 4, concurrency);
      at += 8;
    }
  }
  view.setInt16(at, -1);
  return buffer.subarray(0, at + TRAILER_BYTES);
}
