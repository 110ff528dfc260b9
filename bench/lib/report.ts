/** The Markdown report: environment, HTTP workloads, ingest, observability, live delivery, and their targets. */

import { DATASET } from './dataset.js';
import { COPY_SYSTEM, compareIngest, type IngestResult } from './ingest.js';
import { DRAIN_MS, type LiveDeliveryResult } from './live-delivery.js';

const liveShapeName = (live: LiveDeliveryResult) =>
  live.shape === 'batch' ? 'metricsAddedBatch' : 'metricsAdded';

import type { LoadResult } from './load.js';
import type { ObservabilityResult } from './observability.js';
import { median } from './statistics.js';
import type { Workload } from './workloads.js';

export interface WorkloadResult {
  workload: Workload;
  connections: number;
  baseline: LoadResult | undefined;
  service: LoadResult;
  /** Every round, in order (each round: the baseline, then the service). */
  rounds?: { baseline: RoundFigures[]; service: RoundFigures[] };
  /** Problems found in the sample answers before the load. */
  notes: string[];
}

export type RoundFigures = Pick<LoadResult, 'requestsPerSecond' | 'p50' | 'p99'>;

export interface Report {
  date: string;
  /** The connections of the main runs (the targets are judged on these). */
  connections: number;
  environment: string[];
  http: WorkloadResult[];
  ingest: IngestResult[];
  observability?: ObservabilityResult | undefined;
  /** One run per subscription shape. */
  live: LiveDeliveryResult[];
  notes: string[];
}

export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const ms = (n: number) =>
  Number.isNaN(n) ? 'n/a' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
/**
 * A system's p50 and p99: the medians of its rounds' own, when there are rounds. The round with
 * the median req/s is one of three; its p99 need not be the middle one, and a p99 is decided by
 * a few dozen requests of a round.
 */
function latencyOf(result: LoadResult, rounds: RoundFigures[] | undefined): Pick<LoadResult, 'p50' | 'p99'> {
  if (!rounds || rounds.length === 0) return { p50: result.p50, p99: result.p99 };
  return { p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)) };
}

const p50Of = (result: WorkloadResult) => latencyOf(result.service, result.rounds?.service).p50;

/** Every round's p99, when there are several: what the median was taken of. */
const roundsP99 = (rounds: RoundFigures[] | undefined) =>
  rounds && rounds.length > 1 ? rounds.map((r) => ms(r.p99)).join(', ') : undefined;

/** The p99 cell: the median, and every round's when there are several. */
function p99Cell(result: LoadResult, rounds: RoundFigures[] | undefined): string {
  const p99 = ms(latencyOf(result, rounds).p99);
  const each = roundsP99(rounds);
  return each ? `${p99} (${each})` : p99;
}

const requestRates = (rounds: RoundFigures[]) => rounds.map((r) => r.requestsPerSecond);

export const ratio = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)}%` : 'n/a');

export function cpu(result: LoadResult, group: string): string {
  const value = result.cpuMsPerRequest[group];
  return value === undefined ? '-' : value.toFixed(value < 1 ? 3 : 1);
}

export function errors(result: LoadResult): string {
  return result.errors === 0 ? '0' : `**${result.errors}** (${result.errorDetail})`;
}

interface Check {
  target: string;
  measured: string;
  met: boolean;
}

function targets(report: Report): Check[] {
  const checks: Check[] = [];
  const byId = new Map(
    report.http
      .filter((r) => r.connections === report.connections)
      .map((result) => [result.workload.id, result]),
  );
  const serial = report.http.find((r) => r.workload.id === '4a' && r.connections === 1);
  // Issue 12: ratios to the prepared, compiled baseline, as the median of the rounds' ratios.
  const share = (result: WorkloadResult) =>
    result.rounds && result.rounds.baseline.length > 0
      ? roundRatio(
          { rounds: requestRates(result.rounds.service) },
          { rounds: requestRates(result.rounds.baseline) },
        )
      : result.baseline
        ? result.service.requestsPerSecond / result.baseline.requestsPerSecond
        : Number.NaN;
  const least = (id: string, title: string, minimum: number, p99Below?: number) => {
    const result = byId.get(id);
    if (!result?.baseline) return;
    const measured = share(result);
    checks.push({
      target: `W${id} ${title}: >= ${ratio(minimum)} of baseline req/s`,
      measured: `${ratio(measured)} (${int(result.service.requestsPerSecond)} vs ${int(result.baseline.requestsPerSecond)} req/s, median rounds)`,
      met: measured >= minimum,
    });
    if (p99Below !== undefined) {
      const { p99 } = latencyOf(result.service, result.rounds?.service);
      const each = roundsP99(result.rounds?.service);
      checks.push({
        target: `W${id} ${title}: p99 < ${p99Below} ms at ${report.connections} connections`,
        measured: each ? `${ms(p99)} ms (median of the rounds' ${each})` : `${ms(p99)} ms`,
        met: p99 < p99Below,
      });
    }
  };
  least('1', 'first page', 0.7, 30);
  least('2', 'deep page', 0.7, 30);
  least('3', '1,000-row window', 0.7);
  least('7', 'healthz', 0.8);
  const w4a = byId.get('4a');
  if (w4a) {
    // W4c is not the target's workload, but says what the same question costs when not remembered.
    const w4c = byId.get('4c');
    const serialNew = report.http.find((r) => r.workload.id === '4c' && r.connections === 1);
    const withOne = (result: WorkloadResult | undefined) =>
      result ? ` (${ms(p50Of(result))} ms with 1 connection)` : '';
    checks.push({
      target: 'W4 summary over one day: p50 < 20 ms',
      measured:
        `${ms(p50Of(w4a))} ms${withOne(serial)}` +
        (w4c ? `; a new window each request (W4c): ${ms(p50Of(w4c))} ms${withOne(serialNew)}` : ''),
      met: p50Of(w4a) < 20,
    });
  }
  const ingest = compareIngest(report.ingest);
  if (ingest) {
    checks.push({
      target: 'Ingest: >= 75% of \\copy rows/s',
      measured: `${ratio(ingest.ratio)} (median of ${ingest.roundRatios.length} rounds; ${int(ingest.ingestRowsPerSecond)} vs ${int(ingest.copyRowsPerSecond)} rows/s)`,
      met: ingest.ratio >= 0.75,
    });
    checks.push({
      target: 'Ingest: peak RSS < 200 MB, flat in the input size',
      measured:
        ingest.peakRssMiB === undefined
          ? 'not measured'
          : `${ingest.peakRssMiB.toFixed(0)} MiB for ${int(DATASET.rows)} rows, ${ingest.smallPeakRssMiB?.toFixed(0) ?? '?'} MiB for 10,000`,
      met: ingest.peakRssMiB !== undefined && ingest.peakRssMiB * 1.048576 < 200,
    });
  }
  const observability = report.observability;
  if (observability) {
    const variant = (prefix: string) =>
      observability.variants.find((candidate) => candidate.name.startsWith(prefix)) ?? { rounds: [] };
    const compare = (
      target: string,
      value: { rounds: number[] },
      reference: { rounds: number[] },
      least: number,
    ) => {
      const measured = roundRatio(value, reference);
      checks.push({
        target,
        measured: `${ratio(measured)} (median of ${value.rounds.length} rounds)`,
        met: measured >= least,
      });
    };
    const off = variant('OpenTelemetry off');
    compare(
      'Observability: W1 with OpenTelemetry off >= 97% of without the code',
      off,
      variant('without'),
      0.97,
    );
    compare(
      'Observability: W1 with every trace exported >= 75% of off',
      variant('traces on, 100%'),
      off,
      0.75,
    );
    compare(
      'Observability: W1 with 10% of traces sampled >= 90% of off',
      variant('traces on, parentbased'),
      off,
      0.9,
    );
    checks.push({
      target: 'Observability: /metrics scrape < 20 ms',
      measured: `${observability.scrapeMs.median.toFixed(1)} ms (median of 20; slowest ${observability.scrapeMs.max.toFixed(1)} ms)`,
      met: observability.scrapeMs.median < 20,
    });
  }
  for (const live of report.live) {
    const shape = liveShapeName(live);
    checks.push({
      target: `Live (${shape}): each of ${int(live.subscribers)} subscribers gets every sample exactly once`,
      measured: `${int(live.complete)} complete; ${int(live.missing)} samples not delivered ${DRAIN_MS / 1000} s after the last write, ${int(live.duplicatesOrDisorder)} repeated or out of order`,
      met: live.complete === live.subscribers,
    });
    checks.push({
      target: `Live (${shape}): p99 from commit to delivery < 250 ms`,
      measured: `${live.p99Ms} ms (p50 ${live.p50Ms} ms)`,
      met: live.p99Ms < 250,
    });
  }
  if (report.http.length > 0) {
    const failing = report.http.filter(
      (result) => result.service.errors > 0 || (result.baseline?.errors ?? 0) > 0 || result.notes.length > 0,
    );
    checks.push({
      target: 'Zero errors in every workload',
      measured:
        failing.length === 0 ? '0 errors' : `errors in W${failing.map((r) => r.workload.id).join(', W')}`,
      met: failing.length === 0,
    });
  }
  return checks;
}

/**
 * `variant`'s req/s over `reference`'s, round by round (each round runs the variants back to back,
 * so drift on the machine falls on both), and the median of those ratios.
 */
export function roundRatio(variant: { rounds: number[] }, reference: { rounds: number[] }): number {
  return median(variant.rounds.map((value, round) => value / (reference.rounds[round] ?? Number.NaN)));
}

/** The ingest rounds under `heading`, each run and its ratio to \copy's of the same round; nothing without a pair. */
export function renderIngest(ingest: IngestResult[], heading: string): string[] {
  const comparison = compareIngest(ingest);
  if (!comparison) return [];
  const lines = [heading, ''];
  lines.push(
    '| round | system | rows | wall s | load s | rows/s | peak RSS MiB | rows/s vs \\copy (same round) |',
  );
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const result of ingest) {
    const copy = ingest.find((other) => other.round === result.round && other.system === COPY_SYSTEM);
    lines.push(
      `| ${result.round || 'small input'} | ${result.system} | ${int(result.rows)} | ${result.wallSeconds.toFixed(2)} | ${result.loadSeconds?.toFixed(2) ?? '-'} | ${int(result.rowsPerSecond)} | ${result.peakRssMiB?.toFixed(0) ?? '-'} | ${copy ? ratio(result.rowsPerSecond / copy.rowsPerSecond) : '-'} |`,
    );
  }
  lines.push('');
  lines.push(
    `The ingest script: ${comparison.command}. \`load s\` is its own elapsed time (reading, validating, writing), which its rows/s uses; ` +
      "`wall s` adds Node's start-up. \\copy's rows/s uses its wall time. " +
      `Median of the round ratios: ${ratio(comparison.ratio)}. Peak RSS: ${comparison.rssMethod}, the largest process of the tree.`,
  );
  lines.push('');
  return lines;
}

export function renderReport(report: Report): string {
  const lines: string[] = [`# Benchmark results, ${report.date}`, ''];
  for (const line of report.environment) lines.push(`- ${line}`);
  lines.push('');

  if (report.http.length > 0) {
    lines.push('## HTTP workloads', '');
    lines.push(
      '| # | workload | conns | system | req/s (median round) | rounds | p50 ms | p99 ms (rounds) | errors | server CPU ms/req | PG CPU ms/req | req/s vs baseline |',
    );
    lines.push('| --- | --- | ---: | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |');
    for (const { workload, connections, baseline, service, rounds } of report.http) {
      const label = `${workload.title} | ${connections}`;
      if (baseline) {
        lines.push(
          `| ${workload.id} | ${label} | baseline | ${int(baseline.requestsPerSecond)} | ${rounds ? requestRates(rounds.baseline).map(int).join(', ') : ''} | ${ms(latencyOf(baseline, rounds?.baseline).p50)} | ${p99Cell(baseline, rounds?.baseline)} | ${errors(baseline)} | ${cpu(baseline, 'server')} | ${cpu(baseline, 'postgres')} | 100% |`,
        );
      }
      // The median of the rounds' ratios: a round's two runs are back to back, so drift falls on both.
      const share =
        baseline && rounds
          ? ratio(
              roundRatio({ rounds: requestRates(rounds.service) }, { rounds: requestRates(rounds.baseline) }),
            )
          : baseline
            ? ratio(service.requestsPerSecond / baseline.requestsPerSecond)
            : 'n/a';
      lines.push(
        `| ${workload.id} | ${label} | **service** | ${int(service.requestsPerSecond)} | ${rounds ? requestRates(rounds.service).map(int).join(', ') : ''} | ${ms(latencyOf(service, rounds?.service).p50)} | ${p99Cell(service, rounds?.service)} | ${errors(service)} | ${cpu(service, 'server')} | ${cpu(service, 'postgres')} | **${share}** |`,
      );
    }
    lines.push('');
    lines.push('Workloads:', '');
    const described = report.http.filter((r) => r.connections === report.connections);
    for (const { workload } of described) lines.push(`- **${workload.id}** ${workload.description}`);
    lines.push('');
  }

  lines.push(...renderIngest(report.ingest, `## Ingest: ${int(DATASET.rows)} rows into an empty table`));

  const observability = report.observability;
  if (observability) {
    lines.push('## Observability: W1 (first page of 100) by how it is instrumented', '');
    lines.push(
      'Each variant runs in its own process, the four in turn, three rounds; a row shows its round with the median req/s, ' +
        'and its ratio is the median of its round-by-round ratios to OpenTelemetry off (the machine drifts from round to round, not within one).',
      '',
    );
    lines.push(
      '| variant | req/s (median) | rounds | p50 ms | p99 ms | errors | server CPU ms/req | req/s vs OpenTelemetry off |',
    );
    lines.push('| --- | ---: | --- | ---: | ---: | --- | ---: | ---: |');
    const off = observability.variants.find((variant) => variant.name.startsWith('OpenTelemetry off'));
    for (const variant of observability.variants) {
      const { name, result, rounds } = variant;
      lines.push(
        `| ${name} | ${int(result.requestsPerSecond)} | ${rounds.map(int).join(', ')} | ${result.p50.toFixed(2)} | ${result.p99.toFixed(2)} | ${result.errors} | ${result.cpuMsPerRequest.server?.toFixed(3) ?? '-'} | ${off ? ratio(roundRatio(variant, off)) : 'n/a'} |`,
      );
    }
    lines.push('');
    lines.push(
      `\`/metrics\` after the load, every series filled (${int(observability.scrapeMs.bytes)} bytes): median ${observability.scrapeMs.median.toFixed(1)} ms, slowest of 20 ${observability.scrapeMs.max.toFixed(1)} ms. ` +
        `The local OTLP receiver took ${int(observability.spansReceived)} export requests.`,
    );
    lines.push('');
  }

  const [firstLive] = report.live;
  if (firstLive) {
    lines.push('## Live delivery: subscribers on two replicas while samples are written', '');
    lines.push(
      `${int(firstLive.subscribers)} SSE subscribers (half on each replica, one database), ${int(firstLive.samplesPerSecond)} samples/s written in 10 INSERTs a second for ${firstLive.seconds} s by a separate client; latency from that INSERT's COMMIT returning to the sample's arrival. One run per subscription: \`metricsAddedBatch\` sends an event per write, \`metricsAdded\` one per sample. CPU per sample delivered; the client (this process: the subscribers' parsing and the writer) shares the machine with the replicas.`,
      '',
    );
    lines.push(
      '| subscription | written | samples expected | delivered | complete subscribers | p50 ms | p99 ms | max ms | server CPU µs per sample | client CPU µs per sample | RSS per idle subscriber |',
    );
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const live of report.live) {
      lines.push(
        `| ${liveShapeName(live)} | ${int(live.written)} | ${int(live.written * live.subscribers)} | ${int(live.delivered)} | ${int(live.complete)} | ${live.p50Ms} | ${live.p99Ms} | ${live.maxMs} | ${live.serverCpuUsPerEvent.toFixed(2)} | ${live.clientCpuUsPerEvent.toFixed(2)} | ${live.idleSubscriberKiB.toFixed(0)} KiB |`,
      );
    }
    lines.push('');
  }

  const checks = targets(report);
  if (checks.length > 0) {
    lines.push('## Targets', '');
    lines.push('| target | measured | met |');
    lines.push('| --- | --- | --- |');
    for (const check of checks)
      lines.push(`| ${check.target} | ${check.measured} | ${check.met ? 'yes' : '**no**'} |`);
    lines.push('');
  }

  const notes = [
    ...report.notes,
    ...report.http.flatMap((r) => r.notes.map((note) => `W${r.workload.id}: ${note}`)),
  ];
  if (notes.length > 0) {
    lines.push('## Notes', '');
    for (const note of notes) lines.push(`- ${note}`);
    lines.push('');
  }
  return lines.join('\n');
}
