/**
 * `npm run bench -- --sources`: the speed of many sources (issue 23), in one run, as ratios where
 * there is something to compare with. Parts (`--sources-parts`, all by default):
 *
 * - `reads`: for each fleet size (`--sources-count`, 1,000 and 10,000), per-source questions
 *   against the same on a single series holding the same rows, and questions over every source
 *   (sources-reads.ts, on data from sources-dataset.ts);
 * - `ingest`: the ingest script against `psql \copy` on rows of 1,000 sources (sources-ingest.ts);
 * - `writers`: many writers through the mutation while subscribers count (sources-writers.ts);
 * - `registry`: 100,000 registered sources, their pages and the service's memory (sources-registry.ts).
 */
import { compareIngest } from './ingest.js';
import type { LoadOptions } from './load.js';
import { cpu, errors, int, ms, ratio, renderIngest, roundRatio } from './report.js';
import {
  ensureFleet,
  FLEET_START_MS,
  type Fleet,
  fleetRows,
  measuredSource,
  samplesPerSource,
  singleSeriesOf,
  sourceName,
} from './sources-dataset.js';
import { benchFleetIngest, type FleetIngest, type FleetIngestOptions } from './sources-ingest.js';
import { benchFleetReads, type FleetReads, type FleetWorkloadResult, READ_ROUNDS } from './sources-reads.js';
import {
  benchRegistry,
  PAGE_TARGET_MS,
  REFERENCE_SOURCES,
  type RegistryMemory,
  type RegistryResult,
} from './sources-registry.js';
import { benchWriters, type WritersResult } from './sources-writers.js';

export const SOURCES_PARTS = ['reads', 'ingest', 'writers', 'registry'] as const;
export type SourcesPart = (typeof SOURCES_PARTS)[number];

export interface SourcesOptions {
  parts: SourcesPart[];
  /** Fleet sizes of the reads. */
  counts: number[];
  /** Seconds between a source's samples, by fleet size. */
  stepOf: (count: number) => number;
  /** Hours of data of each fleet (24: the day). */
  hours: number;
  /** Only these questions of the reads (all when absent). */
  questions?: string[] | undefined;
  ingest: FleetIngestOptions;
  writers: { writers: number; rate: number; seconds: number; subscribers: number };
  registrySources: number;
  benchUrl: string;
  service: { command: string; args: string[] };
  load: LoadOptions;
  log: (line: string) => void;
}

/**
 * The default step of a fleet: 10 s for 1,000 sources (8.64 M rows a day), and as many rows for a
 * larger one (100 s for 10,000: 864 samples a source instead of 8,640).
 */
export const defaultStep = (count: number) => Math.max(10, (10 * count) / 1000);

export interface SourcesReport {
  reads: FleetReads[];
  ingest?: FleetIngest;
  writers?: WritersResult;
  registry?: RegistryResult;
}

export async function benchSources(options: SourcesOptions): Promise<SourcesReport> {
  const { log } = options;
  const report: SourcesReport = { reads: [] };
  if (options.parts.includes('reads')) {
    for (const count of options.counts) {
      const fleet: Fleet = {
        sources: count,
        stepSeconds: options.stepOf(count),
        startMs: FLEET_START_MS,
        seconds: options.hours * 3600,
      };
      const states = {
        fleet: await ensureFleet(options.benchUrl, fleet, log),
        single: await ensureFleet(options.benchUrl, singleSeriesOf(fleet), log),
      };
      report.reads.push(
        await benchFleetReads({
          fleet,
          states,
          service: options.service,
          load: options.load,
          log,
          questions: options.questions,
        }),
      );
    }
  }
  if (options.parts.includes('ingest')) {
    log(
      `ingest: ${options.ingest.rows.toLocaleString('en')} rows of ${options.ingest.sources.toLocaleString('en')} sources, npm run ingest vs psql \\copy`,
    );
    report.ingest = await benchFleetIngest(options.benchUrl, options.ingest, log);
  }
  if (options.parts.includes('writers')) {
    report.writers = await benchWriters({
      service: options.service,
      benchUrl: options.benchUrl,
      ...options.writers,
      log,
    });
  }
  if (options.parts.includes('registry')) {
    report.registry = await benchRegistry({
      benchUrl: options.benchUrl,
      count: options.registrySources,
      service: options.service,
      load: options.load,
      log,
    });
  }
  return report;
}

interface Check {
  target: string;
  measured: string;
  met: boolean;
}

/** The fleet's req/s over the single series', round by round, and the median of those. */
const fleetShare = (result: FleetWorkloadResult) =>
  roundRatio(
    { rounds: result.rounds.fleet.map((r) => r.requestsPerSecond) },
    { rounds: result.rounds.single.map((r) => r.requestsPerSecond) },
  );

const p50s = (rounds: { p50: number }[]) => rounds.map((r) => ms(r.p50)).join(', ');

/** The per-source targets apply at every size; those over every source are set for 1,000 sources or fewer. */
const ALL_SOURCES_TARGET_UP_TO = 1000;

function checks(report: SourcesReport): Check[] {
  const found: Check[] = [];
  for (const { fleet, results } of report.reads) {
    const size = `${int(fleet.sources)} sources`;
    for (const result of results) {
      if (result.single) {
        const share = fleetShare(result);
        found.push({
          target: `${size}, ${result.workload.id} ${result.workload.title}: >= 90% of the single series' req/s`,
          measured: `${ratio(share)} (${int(result.fleet.requestsPerSecond)} vs ${int(result.single.requestsPerSecond)} req/s, median rounds; p50 ${ms(result.fleet.p50)} vs ${ms(result.single.p50)} ms)`,
          met: share >= 0.9,
        });
      } else if (result.workload.targetMs !== undefined && fleet.sources <= ALL_SOURCES_TARGET_UP_TO) {
        found.push({
          target: `${size}, ${result.workload.id} ${result.workload.title}: p50 < ${result.workload.targetMs} ms uncached`,
          measured: `${ms(result.fleet.p50)} ms (median round; rounds ${p50s(result.rounds.fleet)})`,
          met: result.fleet.p50 < result.workload.targetMs,
        });
      }
    }
  }
  const ingest = report.ingest && compareIngest(report.ingest.results);
  if (ingest) {
    found.push({
      target: `Ingest of ${int(report.ingest?.options.rows ?? 0)} rows of ${int(report.ingest?.options.sources ?? 0)} sources: >= 75% of \\copy rows/s`,
      measured: `${ratio(ingest.ratio)} (median of ${ingest.roundRatios.length} rounds; ${int(ingest.ingestRowsPerSecond)} vs ${int(ingest.copyRowsPerSecond)} rows/s)`,
      met: ingest.ratio >= 0.75,
    });
  }
  const writers = report.writers;
  if (writers) {
    found.push({
      target: `Many writers: ${int(writers.writers)} clients, ${int(writers.rate)} samples/s sustained`,
      measured: `${int(writers.achievedRate)} samples/s acknowledged; ${int(writers.failed)} failed`,
      met: writers.achievedRate >= 0.95 * writers.rate && writers.failed === 0,
    });
    found.push({
      target: 'Many writers: p99 acknowledgement < 100 ms',
      measured: `${writers.ack.p99} ms (p50 ${writers.ack.p50}, max ${writers.ack.max})`,
      met: writers.ack.p99 < 100,
    });
    found.push({
      target: `Many writers: every sample delivered once, in order, to each of ${int(writers.subscribers)} subscribers`,
      measured: `${int(writers.complete)} complete; ${int(writers.missing)} missing, ${int(writers.outOfCommitOrder)} out of commit order, ${int(writers.outOfWriterOrder)} out of a writer's order`,
      met: writers.complete === writers.subscribers && writers.acknowledged > 0,
    });
  }
  const registry = report.registry;
  if (registry) {
    for (const question of registry.questions.filter((q) => q.targeted)) {
      found.push({
        target: `${int(registry.sources)} sources, ${question.id} ${question.title}: p50 < ${PAGE_TARGET_MS} ms`,
        measured: `${ms(question.result.p50)} ms (rounds ${p50s(question.rounds)})`,
        met: question.result.p50 < PAGE_TARGET_MS,
      });
    }
    const [large, reference] = registry.memory;
    if (large && reference) {
      found.push({
        target: `${int(registry.sources)} sources: the service's memory flat in the number of sources`,
        measured: `retained after a full GC (heap used + external) ${mib(retainedKiB(large))} MiB after reading every page twice, ${mib(retainedKiB(reference))} MiB after as many page reads of ${int(REFERENCE_SOURCES)} sources (RSS ${mib(large.afterKiB)} and ${mib(reference.afterKiB)} MiB)`,
        met: retainedKiB(large) <= retainedKiB(reference) * 1.1,
      });
    }
  }
  const failing = [
    ...report.reads.flatMap(({ fleet, results }) =>
      results
        .filter((r) => r.fleet.errors > 0 || (r.single?.errors ?? 0) > 0 || r.problems.length > 0)
        .map((r) => `${int(fleet.sources)} sources ${r.workload.id}`),
    ),
    ...(report.registry?.questions ?? []).filter((q) => q.result.errors > 0 || q.problem).map((q) => q.id),
  ];
  if (report.reads.length > 0 || report.registry) {
    found.push({
      target: 'Zero errors in every workload',
      measured: failing.length === 0 ? '0 errors' : `errors in ${failing.join(', ')}`,
      met: failing.length === 0,
    });
  }
  return found;
}

const mib = (kib: number) => (kib / 1024).toFixed(0);
const retainedKiB = ({ retained }: RegistryMemory) => retained.heapUsedKiB + retained.externalKiB;

function renderReads(reads: FleetReads): string[] {
  const { fleet, states, results } = reads;
  const lines = [
    `## ${int(fleet.sources)} sources: every ${fleet.stepSeconds} s for ${fleet.seconds / 3600} h (${int(fleetRows(fleet))} rows)`,
    '',
    `- fleet: \`${states.fleet.database}\`, ${state(states.fleet)}`,
    `- single series: \`${states.single.database}\`, the ${int(samplesPerSource(fleet))} rows of ${sourceName(measuredSource(fleet.sources), fleet.sources)} alone in source 1 (\`default\`), ${state(states.single)}`,
    '',
    `Per source: the fleet asked about one source by name, the single series the same without a filter (today's question); ${READ_ROUNDS} rounds, each the single series then the fleet; p50 and p99 of the median round; ratio: the median of the rounds' ratios.`,
    '',
    '| # | question | conns | single series req/s (rounds) | p50 ms | p99 ms | fleet req/s (rounds) | p50 ms | p99 ms | errors | server CPU ms/req single, fleet | PG CPU ms/req single, fleet | fleet vs single |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  const rates = (rounds: { requestsPerSecond: number }[]) =>
    rounds.map((r) => int(r.requestsPerSecond)).join(', ');
  for (const result of results.filter((r) => r.single)) {
    const single = result.single;
    if (!single) continue;
    lines.push(
      `| ${result.workload.id} | ${result.workload.title} | ${result.workload.connections} | ${int(single.requestsPerSecond)} (${rates(result.rounds.single)}) | ${ms(single.p50)} | ${ms(single.p99)} | ${int(result.fleet.requestsPerSecond)} (${rates(result.rounds.fleet)}) | ${ms(result.fleet.p50)} | ${ms(result.fleet.p99)} | ${errors(single)}, ${errors(result.fleet)} | ${cpu(single, 'server')}, ${cpu(result.fleet, 'server')} | ${cpu(single, 'postgres')}, ${cpu(result.fleet, 'postgres')} | **${ratio(fleetShare(result))}** |`,
    );
  }
  lines.push(
    '',
    `Every source, one connection (what one request costs, computed: the aggregate cache is off); ${READ_ROUNDS} rounds, the median round shown:`,
    '',
    '| # | question | p50 ms (rounds) | p99 ms | req/s | errors | server CPU ms/req | PG CPU ms/req | target |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |',
  );
  for (const result of results.filter((r) => !r.single)) {
    const target = result.workload.targetMs;
    lines.push(
      `| ${result.workload.id} | ${result.workload.title} | ${ms(result.fleet.p50)} (${p50s(result.rounds.fleet)}) | ${ms(result.fleet.p99)} | ${int(result.fleet.requestsPerSecond)} | ${errors(result.fleet)} | ${cpu(result.fleet, 'server')} | ${cpu(result.fleet, 'postgres')} | ${target === undefined ? '-' : `< ${target} ms${fleet.sources > ALL_SOURCES_TARGET_UP_TO ? ' at 1,000 sources' : ''}`} |`,
    );
  }
  lines.push('', 'Questions:', '');
  for (const { workload } of results) lines.push(`- **${workload.id}** ${workload.description}`);
  lines.push('');
  return lines;
}

const state = (s: { state: string; loadSeconds?: number }) =>
  s.state === 'reused' ? 'reused' : `generated in ${s.loadSeconds?.toFixed(0) ?? '?'} s`;

function renderWriters(writers: WritersResult): string[] {
  return [
    `## Many writers: ${int(writers.writers)} clients through ingestMetrics, ${int(writers.subscribers)} subscribers`,
    '',
    `Each client is a source of its own and writes one sample per mutation, the next when the last is acknowledged and its time has come (${int(writers.rate)} samples/s in all, for ${writers.seconds} s), over kept-alive connections (node:http) from the bench process; \`metricsAdded\` subscribers (plain SSE) on the same service check every event's cursor against the one before (commit order) and each writer's samples against its own order. Delivery latency: from a sample's acknowledgement to its arrival (0 when it arrives first).`,
    '',
    "| sent | acknowledged | failed | samples/s acknowledged | ack p50 ms | ack p99 ms | ack max ms | delivery p50 ms | delivery p99 ms | complete subscribers | missing | out of commit order | out of a writer's order | rows stored | server CPU ms/sample | PG CPU ms/sample |",
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${int(writers.sent)} | ${int(writers.acknowledged)} | ${writers.failed === 0 ? '0' : `**${int(writers.failed)}**`} | ${int(writers.achievedRate)} | ${writers.ack.p50} | ${writers.ack.p99} | ${writers.ack.max} | ${writers.delivery.p50} | ${writers.delivery.p99} | ${int(writers.complete)} of ${int(writers.subscribers)} | ${int(writers.missing)} | ${int(writers.outOfCommitOrder)} | ${int(writers.outOfWriterOrder)} | ${int(writers.stored)} | ${writers.serverCpuMsPerSample.toFixed(3)} | ${writers.postgresCpuMsPerSample.toFixed(3)} |`,
    '',
    ...(writers.firstFailure ? [`First failure: ${writers.firstFailure}`, ''] : []),
  ];
}

function renderRegistry(registry: RegistryResult): string[] {
  const lines = [
    `## ${int(registry.sources)} registered sources`,
    '',
    `\`metrics_sources_registry_${registry.sources}\` (${registry.state}): sources inserted directly, no samples. One connection, three rounds, the median round shown.`,
    '',
    '| # | question | p50 ms (rounds) | p99 ms | req/s | errors | server CPU ms/req |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const question of registry.questions) {
    lines.push(
      `| ${question.id} | ${question.title} | ${ms(question.result.p50)} (${p50s(question.rounds)}) | ${ms(question.result.p99)} | ${int(question.result.requestsPerSecond)} | ${errors(question.result)} | ${cpu(question.result, 'server')} |`,
    );
  }
  lines.push('', 'Questions:', '');
  for (const question of registry.questions) lines.push(`- **${question.id}** ${question.description}`);
  lines.push(
    '',
    `Memory: the service's RSS before and after reading every page (\`sources(first: 1000)\`) of both orders twice, after one unmeasured walk of each; the reference reads as many pages of ${int(REFERENCE_SOURCES)} sources (the same pages again and again) on a fresh service. Then what it retains: heap used and external memory after a full garbage collection, through the inspector (bench/lib/inspector.ts). Flat: the large registry's retained memory within the reference's + 10%. RSS also holds what V8 grew and keeps (a young generation of up to 64 MB a semi-space), which follows the bytes allocated, not the number of sources.`,
    '',
    '| sources | pages read | seconds | RSS before MiB | RSS after MiB | heap used after GC MiB | external after GC MiB | RSS after GC MiB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const memory of registry.memory) {
    lines.push(
      `| ${int(memory.sources)} | ${int(memory.pages)} | ${memory.seconds.toFixed(1)} | ${mib(memory.beforeKiB)} | ${mib(memory.afterKiB)} | ${mib(memory.retained.heapUsedKiB)} | ${mib(memory.retained.externalKiB)} | ${mib(memory.retained.rssKiB)} |`,
    );
  }
  lines.push('');
  return lines;
}

/** The Markdown section of a run: each part's tables, the targets, and problems seen. */
export function renderSources(report: SourcesReport): string[] {
  const lines: string[] = [];
  for (const reads of report.reads) lines.push(...renderReads(reads));
  if (report.ingest) {
    const { rows, sources, stepSeconds } = report.ingest.options;
    lines.push(
      ...renderIngest(
        report.ingest.results,
        `## Ingest: ${int(rows)} rows of ${int(sources)} sources (a sample of each every ${stepSeconds} s, interleaved) into an empty table`,
      ),
      "`\\copy` reads the same rows as CSV with each source's id, its sources made first with their labels; the ingest script reads the generator's NDJSON (`scripts/generate-metrics.ts --sources`) and makes the sources itself. Both databases: partitions made first, every trigger on; round 1 checked that both hold the same rows, rollups and sources.",
      '',
    );
  }
  if (report.writers) lines.push(...renderWriters(report.writers));
  if (report.registry) lines.push(...renderRegistry(report.registry));
  const found = checks(report);
  if (found.length > 0) {
    lines.push('## Targets', '', '| target | measured | met |', '| --- | --- | --- |');
    for (const check of found)
      lines.push(`| ${check.target} | ${check.measured} | ${check.met ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  const problems = [
    ...report.reads.flatMap(({ fleet, results }) =>
      results.flatMap((r) => r.problems.map((p) => `${int(fleet.sources)} sources ${r.workload.id}: ${p}`)),
    ),
    ...(report.registry?.questions ?? []).flatMap((q) => (q.problem ? [`${q.id}: ${q.problem}`] : [])),
  ];
  if (problems.length > 0) {
    lines.push('## Problems in the answers checked before the load', '');
    for (const problem of problems) lines.push(`- ${problem}`);
    lines.push('');
  }
  return lines;
}
