import type { Batch } from './sample-batch.js';

/**
 * A batch in PostgreSQL's binary COPY format, for ("timestamp" timestamptz, cpu_load real,
 * concurrency integer): fixed-width fields, so the server parses no text and the client formats
 * none (no ISO dates, no shortest-decimal floats). `real` travels as the float4 nearest to the
 * double, which is what `Math.fround` gives and what the column keeps.
 * https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4
 */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 4 + 4;
const TUPLE_BYTES = 2 + (4 + 8) + (4 + 4) + (4 + 4);
const TRAILER_BYTES = 2;

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
  const { timestamps, loads, concurrencies, length } = batch;
  const bytes = HEADER_BYTES + length * TUPLE_BYTES + TRAILER_BYTES;
  let buffer = buffers.get(batch);
  if (!buffer || buffer.length < bytes) {
    buffer = Buffer.allocUnsafe(HEADER_BYTES + batch.capacity * TUPLE_BYTES + TRAILER_BYTES);
    buffers.set(batch, buffer);
  }
  const out = buffer.subarray(0, bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  SIGNATURE.copy(out, 0);
  view.setInt32(SIGNATURE.length, 0); // flags: no OIDs
  view.setInt32(SIGNATURE.length + 4, 0); // no header extension
  let at = HEADER_BYTES;
  for (let i = 0; i < length; i++) {
    view.setInt16(at, 3);
    view.setInt32(at + 2, 8);
    // Milliseconds times 1000 can pass 2^53 (after the year 2285), so the 64-bit product is
    // built from 32-bit halves, each step exact in a double.
    const ms = (timestamps[i] as number) - POSTGRES_EPOCH_MS;
    const high = Math.floor(ms / TWO_TO_32);
    const lowMicros = (ms - high * TWO_TO_32) * 1000;
    const carry = Math.floor(lowMicros / TWO_TO_32);
    view.setInt32(at + 6, high * 1000 + carry);
    view.setUint32(at + 10, lowMicros - carry * TWO_TO_32);
    view.setInt32(at + 14, 4);
    view.setFloat32(at + 18, loads[i] as number);
    view.setInt32(at + 22, 4);
    view.setInt32(at + 26, concurrencies[i] as number);
    at += TUPLE_BYTES;
  }
  view.setInt16(at, -1);
  return out;
}
