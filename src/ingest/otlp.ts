/**
 * OTLP/HTTP metrics: an ExportMetricsServiceRequest in protobuf or in OTLP's JSON mapping
 * (lowerCamelCase names, 64-bit integers as strings). Gauges and sums of the mapped metrics become
 * points, their source named by the resource's attributes; the resource's other scalar attributes
 * are the source's labels. Data point attributes (a method, a route) are not labels of the
 * source: points differing only by them are added into one sample.
 */
import type protobuf from 'protobufjs';
import { type AgentMapping, fieldsByMetric } from '../domain/agent-mapping.js';
import { decodeMessage, int64Number, loadSchema, MalformedPayloadError } from './agent-payload.js';
import {
  type AgentPoint,
  addRefusal,
  type PointRefusals,
  refusalMessage,
  splitSource,
} from './agent-samples.js';

type Long = protobuf.Long;

interface AnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Long | number;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value?: AnyValue | null;
}
interface NumberDataPoint {
  timeUnixNano: Long | number;
  value?: 'asDouble' | 'asInt';
  asDouble?: number;
  asInt?: Long | number;
  flags: number;
}
type MetricKind = 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'summary';
/** A metric; the points of the kinds that are not stored stay undecoded bytes. */
type Metric = { name: string; data?: MetricKind } & {
  [kind in MetricKind]?: { dataPoints: kind extends 'gauge' | 'sum' ? NumberDataPoint[] : unknown[] };
};
interface ExportMetricsServiceRequest {
  resourceMetrics: {
    resource?: { attributes: KeyValue[] } | null;
    scopeMetrics: { metrics: Metric[] }[];
  }[];
}

export type OtlpEncoding = 'protobuf' | 'json';

const schema = loadSchema('otlp-metrics.proto');
const requestType = schema.lookupType('opentelemetry.proto.ExportMetricsServiceRequest');
const responseType = schema.lookupType('opentelemetry.proto.ExportMetricsServiceResponse');
const statusType = schema.lookupType('opentelemetry.proto.Status');

/** A data point the sender marked as holding no value (OTLP's FLAG_NO_RECORDED_VALUE). */
const NO_RECORDED_VALUE = 1;
const NANOSECONDS_PER_MS = 1_000_000;

/** An attribute's value as a label value; lists, maps and bytes are not labels. */
function scalarText(value: AnyValue | null | undefined): string | undefined {
  switch (value?.value) {
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return String(value.boolValue);
    case 'intValue':
      return String(int64Number(value.intValue as Long | number));
    case 'doubleValue':
      return String(value.doubleValue);
    default:
      return undefined;
  }
}

function attributeLabels(attributes: readonly KeyValue[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const { key, value } of attributes) {
    const text = scalarText(value);
    if (text !== undefined) labels[key] = text;
  }
  return labels;
}

function parse(body: Uint8Array, encoding: OtlpEncoding): ExportMetricsServiceRequest {
  if (encoding === 'protobuf')
    return decodeMessage<ExportMetricsServiceRequest>(requestType, body, 'ExportMetricsServiceRequest');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString());
  } catch (error) {
    throw new MalformedPayloadError(`the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new MalformedPayloadError('the body is not an ExportMetricsServiceRequest: expected a JSON object');
  try {
    // fromObject then the same reading as protobuf: the oneof names are set on messages it makes.
    return requestType.fromObject(json) as unknown as ExportMetricsServiceRequest;
  } catch (error) {
    throw new MalformedPayloadError(
      `the body is not an ExportMetricsServiceRequest: ${(error as Error).message}`,
    );
  }
}

/**
 * Decodes an OTLP metrics export into the points of the mapped gauges and sums; points refused
 * before validation (a histogram, no time) are added to `refusals`.
 */
export function decodeOtlpMetrics(
  body: Uint8Array,
  encoding: OtlpEncoding,
  mapping: AgentMapping,
  refusals: PointRefusals,
): AgentPoint[] {
  const request = parse(body, encoding);
  const fields = fieldsByMetric(mapping);
  const points: AgentPoint[] = [];
  for (const resourceMetrics of request.resourceMetrics) {
    const { source, labels } = splitSource(
      attributeLabels(resourceMetrics.resource?.attributes ?? []),
      mapping.sourceLabels,
    );
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        const field = fields.get(metric.name);
        const count = metric.data ? (metric[metric.data]?.dataPoints.length ?? 0) : 0;
        if (field === undefined) continue;
        if (metric.data !== 'gauge' && metric.data !== 'sum') {
          addRefusal(
            refusals,
            Math.max(1, count),
            `${metric.name}: ${metric.data ? `a ${metric.data}` : 'a metric without data'} is not stored; send a gauge or a sum`,
          );
          continue;
        }
        const dataPoints = metric[metric.data]?.dataPoints ?? [];
        for (const point of dataPoints) {
          if ((point.flags & NO_RECORDED_VALUE) !== 0) continue;
          const timeNs = int64Number(point.timeUnixNano);
          if (timeNs <= 0) {
            addRefusal(refusals, 1, `${metric.name}: a data point without timeUnixNano`);
            continue;
          }
          const value =
            point.value === 'asInt'
              ? int64Number(point.asInt as Long | number)
              : (point.asDouble ?? Number.NaN);
          points.push({
            field,
            timestampMs: Math.floor(timeNs / NANOSECONDS_PER_MS),
            value,
            source,
            labels,
          });
        }
      }
    }
  }
  return points;
}

/** The answer to an export, in the request's encoding: a partial success when points were refused. */
export function exportResponse(encoding: OtlpEncoding, refusals: PointRefusals): Uint8Array | string {
  const refused = refusals.points > 0;
  if (encoding === 'json') {
    // OTLP's JSON mapping gives 64-bit integers as strings.
    const partialSuccess = {
      rejectedDataPoints: String(refusals.points),
      errorMessage: refusalMessage(refusals),
    };
    return JSON.stringify(refused ? { partialSuccess } : {});
  }
  const partialSuccess = { rejectedDataPoints: refusals.points, errorMessage: refusalMessage(refusals) };
  return responseType.encode(responseType.fromObject(refused ? { partialSuccess } : {})).finish();
}

/** An error answer's body (google.rpc.Status), in the request's encoding. */
export function statusBody(encoding: OtlpEncoding, code: number, message: string): Uint8Array | string {
  if (encoding === 'json') return JSON.stringify({ code, message });
  return statusType.encode(statusType.fromObject({ code, message })).finish();
}
