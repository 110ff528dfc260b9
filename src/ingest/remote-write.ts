/**
 * Prometheus remote-write 1.0: a snappy-compressed (block format) protobuf WriteRequest. Series
 * of the mapped metrics become points; every other series is ignored, so that an agent can send
 * all it scrapes. Stale markers (the NaN Prometheus writes when a series disappears) are dropped,
 * as a store of samples has nothing to keep for them.
 */
import type protobuf from 'protobufjs';
import snappy from 'snappy';
import { type AgentMapping, fieldsByMetric, type SampleField } from '../domain/agent-mapping.js';
import {
  decodeMessage,
  int64Number,
  loadSchema,
  MalformedPayloadError,
  PayloadTooLargeError,
} from './agent-payload.js';
import { type AgentPoint, namedSource } from './agent-samples.js';

interface Label {
  name: string;
  value: string;
}
interface Sample {
  value: number;
  timestamp: protobuf.Long | number;
}
interface TimeSeries {
  labels: Label[];
  samples: Sample[];
}
interface WriteRequest {
  timeseries: TimeSeries[];
}

const writeRequestType = loadSchema('remote-write.proto').lookupType('prometheus.WriteRequest');

/** The stale marker's bits: a NaN of its own (Prometheus' value.StaleNaN). */
const STALE_HIGH = 0x7ff00000;
const STALE_LOW = 0x00000002;
const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
function isStaleMarker(value: number): boolean {
  if (!Number.isNaN(value)) return false;
  bits[0] = value;
  return words[1] === STALE_HIGH && words[0] === STALE_LOW;
}

/**
 * The uncompressed length a snappy block declares in its first bytes (a varint), read before
 * decompressing so that a small body declaring gigabytes is refused without allocating them.
 */
function declaredLength(body: Uint8Array): number {
  let length = 0;
  for (let index = 0; index < 5 && index < body.length; index++) {
    const byte = body[index] as number;
    length += (byte & 0x7f) * 2 ** (7 * index);
    if (byte < 0x80) return length;
  }
  throw new MalformedPayloadError('the body is not snappy-compressed: its length header is cut short');
}

/** What a series' points are: which field, of which source, with which of its labels. */
type SeriesMeaning = Pick<AgentPoint, 'field' | 'source' | 'labels'>;

/**
 * The meaning of a series with these labels; undefined: not a mapped metric. `known` holds the
 * last meaning of each metric and source, taken again when the labels are the same.
 */
function seriesMeaning(
  seriesLabels: readonly Label[],
  fields: ReadonlyMap<string, SampleField>,
  sourceLabels: readonly string[],
  known: Map<string, SeriesMeaning>,
): SeriesMeaning | undefined {
  const metric = seriesLabels.find(({ name }) => name === '__name__')?.value;
  const field = metric === undefined ? undefined : fields.get(metric);
  if (field === undefined) return undefined;
  const named = namedSource(sourceLabels, (name) => seriesLabels.find((label) => label.name === name)?.value);
  const sourceLabel = named?.label;
  const sourceName = named?.source;
  const key = `${metric}\u0000${sourceName ?? ''}`;
  const last = known.get(key);
  if (last && sameLabels(last, seriesLabels, sourceLabel)) return last;
  const labels: Record<string, string> = {};
  for (const { name, value } of seriesLabels)
    if (name !== '__name__' && name !== sourceLabel) labels[name] = value;
  // A concurrency series carries labels of its own (method, route): only a load's are the source's.
  const meaning: SeriesMeaning = {
    field,
    source: sourceName,
    // Frozen: the points of the series share them, and they are checked once (checkLabels).
    labels: field === 'cpuLoad' ? Object.freeze(labels) : undefined,
  };
  known.set(key, meaning);
  return meaning;
}

/** Whether a series' labels, but its name and source, are those a meaning was made of. */
function sameLabels(
  meaning: SeriesMeaning,
  seriesLabels: readonly Label[],
  sourceLabel: string | undefined,
): boolean {
  // A concurrency meaning keeps no labels: its series' own labels change nothing.
  if (meaning.labels === undefined) return true;
  let count = 0;
  for (const { name, value } of seriesLabels) {
    if (name === '__name__' || name === sourceLabel) continue;
    if (meaning.labels[name] !== value) return false;
    count++;
  }
  return count === Object.keys(meaning.labels).length;
}

/** Decodes a remote-write body into the points of the mapped metrics. */
export function decodeRemoteWrite(
  body: Uint8Array,
  mapping: AgentMapping,
  maxDecodedBytes: number,
): AgentPoint[] {
  const length = declaredLength(body);
  if (length > maxDecodedBytes)
    throw new PayloadTooLargeError(
      `the body declares ${length} bytes uncompressed; at most ${maxDecodedBytes} are accepted at once`,
    );
  let message: Uint8Array;
  try {
    message = snappy.uncompressSync(Buffer.from(body.buffer, body.byteOffset, body.byteLength)) as Buffer;
  } catch (error) {
    throw new MalformedPayloadError(
      `the body is not snappy-compressed (block format): ${(error as Error).message}`,
    );
  }
  const request = decodeMessage<WriteRequest>(writeRequestType, message, 'remote-write WriteRequest');
  const fields = fieldsByMetric(mapping);
  const points: AgentPoint[] = [];
  // Prometheus sends a series' samples as series of one sample each: the meaning of a metric's
  // series of one source is worked out once, and its points then share one labels object.
  const meanings = new Map<string, SeriesMeaning>();
  for (const series of request.timeseries) {
    const meaning = seriesMeaning(series.labels, fields, mapping.sourceLabels, meanings);
    if (meaning === undefined) continue;
    for (const sample of series.samples) {
      if (isStaleMarker(sample.value)) continue;
      points.push({
        field: meaning.field,
        timestampMs: int64Number(sample.timestamp),
        value: sample.value,
        source: meaning.source,
        labels: meaning.labels,
      });
    }
  }
  return points;
}
