/**
 * What the agent receivers share about a request's body: its schemas (protobufjs over the
 * receivers' .proto files) and the two ways it can be wrong before any point is read.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { projectRoot } from '../paths.js';

/** A body that will never decode (bad protobuf, JSON, snappy or gzip): 400, not to be retried. */
export class MalformedPayloadError extends Error {
  override name = 'MalformedPayloadError';
}

/** A body that decodes to more than the receiver accepts at once: 413. */
export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

/** Loads one of the receivers' schemas, shipped next to the code in src/ingest/proto. */
export function loadSchema(file: string): protobuf.Root {
  return protobuf.loadSync(join(projectRoot, 'src/ingest/proto', file));
}

const TWO_TO_32 = 2 ** 32;

/**
 * A protobuf 64-bit integer as decoded (a Long, or a number) as a number: exact to 2^53, which
 * holds any millisecond timestamp; nanoseconds since 1970 keep 256 ns of precision.
 */
export function int64Number(value: protobuf.Long | number | string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  return (value.unsigned ? value.high >>> 0 : value.high) * TWO_TO_32 + (value.low >>> 0);
}

/** Decodes `body` as `type`, its failures as MalformedPayloadError naming what was expected. */
export function decodeMessage<T>(type: protobuf.Type, body: Uint8Array, what: string): T {
  try {
    return type.decode(body) as unknown as T;
  } catch (error) {
    throw new MalformedPayloadError(`the body is not a protobuf ${what}: ${(error as Error).message}`);
  }
}
