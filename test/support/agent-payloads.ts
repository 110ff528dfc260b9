// Bodies as agents send them, built with protobufjs over the receivers' schemas, for the tests of
// bad input. That the schemas match the agents' own encoders is proven by the tests that push from
// the real ones (Prometheus, the OpenTelemetry exporters).
import protobuf from 'protobufjs';
import snappy from 'snappy';
import { projectRoot } from '../../src/paths.js';

const remoteWrite = protobuf.loadSync(`${projectRoot}src/ingest/proto/remote-write.proto`);
const writeRequest = remoteWrite.lookupType('prometheus.WriteRequest');

export interface TestSeries {
  labels: Record<string, string>;
  samples: { value: number; timestamp: number }[];
}

/** A WriteRequest's protobuf, uncompressed. */
export function writeRequestBytes(series: readonly TestSeries[]): Uint8Array {
  return writeRequest
    .encode({
      timeseries: series.map(({ labels, samples }) => ({
        labels: Object.entries(labels).map(([name, value]) => ({ name, value })),
        samples,
      })),
    })
    .finish();
}

/** A remote-write body: the WriteRequest, snappy-compressed. */
export function remoteWriteBody(series: readonly TestSeries[]): Uint8Array {
  return new Uint8Array(snappy.compressSync(Buffer.from(writeRequestBytes(series))));
}

/** Prometheus' stale marker, a NaN with its own bits. */
export const STALE_NAN = new Float64Array(new BigUint64Array([0x7ff0000000000002n]).buffer)[0] as number;
