/**
 * `npm run bench`: the benchmark suite. See bench/README.md.
 *
 * 1. Builds the service (`npm run build`) as production runs it.
 * 2. Generates 1,000,000 samples (one a second) with scripts/generate-metrics.ts, once, into
 *    bench/.cache, and loads them with `npm run ingest` into BENCH_DATABASE_URL (default
 *    postgresql://postgres@127.0.0.1:5432/metrics_bench) unless that database already holds them.
 * 3. Starts the service (`node dist/src/main.js`, NODE_ENV=production) and the baseline server
 *    (bench/baseline-server.ts compiled with tsc), and runs every workload against each with wrk:
 *    same connections, warm-up and duration; three rounds of baseline then service per workload.
 * 4. What observability costs (W1 on four builds), and live delivery (subscribers on two replicas).
 * 5. Loads the same 1,000,000 rows into empty tables with `npm run ingest` and with `psql \copy`.
 * 6. Prints a Markdown report and writes it to bench/results/<date>.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { AGENT_SYSTEMS, type AgentSystem, benchAgents, renderAgents } from './lib/agents.js';
import {
  backendPids,
  CACHE_DIR,
  DATASET,
  databaseName,
  databaseUrl,
  ensureBenchData,
  ensureDataFiles,
  ROOT,
  waitForIdleDatabase,
  withClient,
} from './lib/dataset.js';
import { benchIngest, type IngestResult } from './lib/ingest.js';
import { benchLiveDelivery, type LiveDeliveryResult } from './lib/live-delivery.js';
import { type LoadOptions, type LoadResult, medianRun, runLoad, sample } from './lib/load.js';
import { benchObservability, type ObservabilityResult } from './lib/observability.js';
import {
  cpuMsByPid,
  freePort,
  machineBusyMs,
  mustRun,
  NODE_FLAGS,
  productionEnv,
  runCommand,
  Service,
} from './lib/processes.js';
import { int, ratio, renderReport, type WorkloadResult } from './lib/report.js';
import { benchScale, renderScale } from './lib/scale.js';
import { benchSources, defaultStep, renderSources, SOURCES_PARTS, type SourcesPart } from './lib/sources.js';
import {
  deepCursorQuery,
  dig,
  OLD_BASELINE_FIRST_PAGE,
  type Target,
  type Workload,
  workloads,
} from './lib/workloads.js';

const HELP = `Usage: npm run bench -- [options]

Options:
  --connections <n>  Concurrent connections for every workload (default 32).
  --duration <s>     Measured seconds per run (default 4; each workload runs 3 rounds per system).
  --warmup <s>       Unmeasured warm-up seconds before each run (default 1).
  --only <ids>       Comma-separated workloads to run, e.g. 1,2,4a (default: all); skips ingest.
  --skip-ingest      Skip the ingest comparison.
  --skip-http        Skip the HTTP workloads.
  --skip-observability  Skip the cost of observability (W1 without the code, off, traced 100% and 10%).
  --skip-live        Skip live delivery (subscribers on two replicas while samples are written).
  --live-shapes <s>  Live delivery's subscriptions, in order: batch (metricsAddedBatch, an event per
                     write) and/or sample (metricsAdded, an event per sample). Default batch,sample.
  --live-subscribers <n>  Live delivery's SSE subscribers, split over two replicas (default 1000).
  --live-rate <n>    Live delivery's samples written per second, in 10 batches a second (default 1000).
  --live-seconds <s> How long live delivery writes (default 5).
  --cpu-prof         Run the service (live delivery's replicas, the sources services) with --cpu-prof; profiles go to
                     bench/.cache/profiles.
  --tsx              Run the service from source with tsx instead of building it.
  --sources          Only the sources benchmark (issue 23): per-source and fleet-wide reads of
                     fleets of 1,000 and 10,000 sources, ingest of a fleet's rows, many writers with
                     live subscribers, 100,000 registered sources. Writes
                     bench/results/<date>-sources.md when run whole at its default sizes.
  --sources-parts <p>  Its parts, comma-separated: reads, ingest, writers, registry (default: all).
  --sources-count <n>  Fleet sizes of the reads, comma-separated (default 1000,10000).
  --sources-questions <ids>  Only these questions of the reads, comma-separated (P1..P5, A1..A4;
                     default: all), to measure one again.
  --sources-hours <h>  Hours of data of each fleet (default 24).
  --sources-step <s>   Seconds between a source's samples (default: 10 for 1,000 sources, and as
                     many rows for more: 100 for 10,000).
  --ingest-rows <n>  Rows of the fleet ingest (default 10000000).
  --ingest-sources <n>  Sources of the fleet ingest (default 1000).
  --ingest-rounds <n>   Rounds of \\copy then the script (default 3).
  --writers <n>      Clients writing one sample at a time through ingestMetrics (default 200).
  --writers-rate <n> Samples a second, all writers together (default 1000).
  --writers-seconds <s>  How long they write (default 300).
  --writers-subscribers <n>  metricsAdded subscribers counting deliveries (default 100).
  --registry-sources <n>  Registered sources of the registry part (default 100000).
  --agents           Only the agents benchmark: the same samples through \`npm run ingest\`, Prometheus
                     remote-write and OTLP (protobuf, JSON), each into a fresh database; rows/s and
                     the ratio to the CLI. Writes bench/results/<date>-agents.md at its default sizes.
  --agents-sources <n>  Sources of its samples (default 100).
  --agents-steps <n>    Instants of each source, 10 s apart (default 5000: 500,000 samples).
  --agents-batch <n>    Points per request (default 2000, Prometheus' max_samples_per_send).
  --agents-senders <n>  Concurrent senders: remote-write shards, OTLP senders (default 4).
  --agents-rounds <n>   Rounds of every system (default 3).
  --agents-systems <s>  Which, in order (default cli,remote-write,otlp-protobuf,otlp-json).
  --output <path>    Where to write the report. Default: bench/results/<date>.md for a full run;
                     partial runs (--only, --skip-*) write nothing unless given --output.
  -h, --help         Show this help.

Environment:
  BENCH_DATABASE_URL   Benchmark database (default postgresql://postgres@127.0.0.1:5432/metrics_bench).
                       Scratch databases metrics_bench_ingest and metrics_bench_copy are created
                       next to it on the same server and dropped afterwards.
  DATABASE_POOL_SIZE   Passed to the service; the baseline uses the same pool size (default 10).
`;

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '32' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string' },
    'skip-ingest': { type: 'boolean', default: false },
    'skip-http': { type: 'boolean', default: false },
    'skip-observability': { type: 'boolean', default: false },
    'skip-live': { type: 'boolean', default: false },
    'live-shapes': { type: 'string', default: 'batch,sample' },
    'live-subscribers': { type: 'string', default: '1000' },
    'live-rate': { type: 'string', default: '1000' },
    'live-seconds': { type: 'string', default: '5' },
    'cpu-prof': { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
    sources: { type: 'boolean', default: false },
    'sources-parts': { type: 'string' },
    'sources-count': { type: 'string' },
    'sources-questions': { type: 'string' },
    'sources-hours': { type: 'string' },
    'sources-step': { type: 'string' },
    'ingest-rows': { type: 'string' },
    'ingest-sources': { type: 'string' },
    'ingest-rounds': { type: 'string' },
    writers: { type: 'string' },
    'writers-rate': { type: 'string' },
    'writers-seconds': { type: 'string' },
    'writers-subscribers': { type: 'string' },
    'registry-sources': { type: 'string' },
    agents: { type: 'boolean', default: false },
    'agents-sources': { type: 'string' },
    'agents-steps': { type: 'string' },
    'agents-batch': { type: 'string' },
    'agents-senders': { type: 'string' },
    'agents-rounds': { type: 'string' },
    'agents-systems': { type: 'string' },
    tsx: { type: 'boolean', default: false },
    output: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const started = performance.now();
const startLoad = loadavg()[0]?.toFixed(2);
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
const log = (line: string) => process.stderr.write(`[bench ${elapsed()}] ${line}\n`);

const benchUrl = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/metrics_bench';
const poolSize = Number(process.env.DATABASE_POOL_SIZE ?? 10);
const load: LoadOptions = {
  connections: Number(args.connections),
  duration: Number(args.duration),
  warmup: Number(args.warmup),
  timeout: 30,
};
const only = args.only?.split(',').map((id) => id.trim());
const partial =
  (only !== undefined && !only.includes('obs') && !only.includes('live')) ||
  args['skip-live'] ||
  args['skip-ingest'] ||
  args['skip-http'] ||
  args['skip-observability'];

async function build(): Promise<{ command: string; args: string[]; how: string }> {
  const entry = {
    command: process.execPath,
    args: [...NODE_FLAGS, '--import', 'tsx', join(ROOT, 'src/main.ts')],
  };
  if (args.tsx) {
    await runCommand('npm', ['run', 'generate'], { cwd: ROOT });
    return { ...entry, how: '`node --import tsx src/main.ts` (from source, --tsx)' };
  }
  log('npm run build');
  const result = await runCommand('npm', ['run', 'build'], { cwd: ROOT });
  if (result.code === 0) {
    return {
      command: process.execPath,
      args: [...NODE_FLAGS, join(ROOT, 'dist/src/main.js')],
      how: `\`node ${NODE_FLAGS.join(' ')} dist/src/main.js\` (as \`npm start\`) after \`npm run build\``,
    };
  }
  log(
    `npm run build failed; running the service from source with tsx instead:\n${result.stdout.slice(-2000)}`,
  );
  await runCommand('npm', ['run', 'generate'], { cwd: ROOT });
  return { ...entry, how: '`node --import tsx src/main.ts` (**`npm run build` failed**, see the log)' };
}

/** Rounds of each workload, baseline and service interleaved; the median round is reported. */
const ROUNDS = 3;

/** The baseline as compiled JavaScript (tsc), not through tsx's loader. */
async function compiledBaseline(): Promise<string> {
  const outDir = join(CACHE_DIR, 'baseline');
  await mustRun(
    'npx',
    [
      'tsc',
      // The one file, with these options only: not the project's tsconfig.json.
      '--ignoreConfig',
      join(ROOT, 'bench/baseline-server.ts'),
      '--outDir',
      outDir,
      '--target',
      'es2023',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--types',
      'node',
      '--skipLibCheck',
    ],
    { cwd: ROOT },
  );
  return join(outDir, 'baseline-server.js');
}

async function gitDescription(): Promise<string> {
  const head = await runCommand('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT });
  const status = await runCommand('git', ['status', '--porcelain', '--', 'src', 'scripts', 'prisma'], {
    cwd: ROOT,
  });
  const dirty = status.stdout.split('\n').filter(Boolean).length;
  return `${head.stdout.trim() || 'unknown'}${dirty > 0 ? ` (+${dirty} uncommitted files in src/, scripts/, prisma/)` : ''}`;
}

function describe(result: LoadResult): string {
  const cpu = Object.entries(result.cpuMsPerRequest)
    .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
    .join(', ');
  return `${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ${result.errors} errors; CPU ms/req: ${cpu}`;
}

async function checkSample(
  baseUrl: string,
  target: Target,
  workload: Workload,
  system: 'service' | 'baseline',
) {
  const answer = await sample(baseUrl, target);
  if (!answer.ok) return `${system}: ${answer.problem}`;
  const problem = workload.check(answer.answer, system);
  return problem ? `${system}: ${problem}` : undefined;
}

/** The service's node flags under --cpu-prof. */
const PROFILE_FLAGS = ['--cpu-prof', `--cpu-prof-dir=${join(CACHE_DIR, 'profiles')}`];

async function runHttp(
  serviceCommand: Awaited<ReturnType<typeof build>>,
  notes: string[],
  environment: string[],
): Promise<WorkloadResult[]> {
  const [servicePort, baselinePort] = [await freePort(), await freePort()];
  const serviceArgs = args['cpu-prof'] ? [...PROFILE_FLAGS, ...serviceCommand.args] : serviceCommand.args;
  const service = Service.start(
    'service',
    serviceCommand.command,
    serviceArgs,
    productionEnv(process.env, benchUrl, servicePort),
  );
  const baselineEnv = (port: number, mode: 'limit' | 'old') => ({
    ...process.env,
    DATABASE_URL: benchUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    POOL_SIZE: String(poolSize),
    BASELINE_MODE: mode,
  });
  const baseline = Service.start(
    'baseline',
    process.execPath,
    [...NODE_FLAGS, await compiledBaseline()],
    baselineEnv(baselinePort, 'limit'),
  );
  // The earlier baseline (tsx, unprepared statements, its own smaller JSON), for W1 only.
  const oldBaselinePort = await freePort();
  const oldBaseline = Service.start(
    'old baseline',
    process.execPath,
    [...NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench/baseline-server.ts')],
    baselineEnv(oldBaselinePort, 'old'),
  );
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  const oldBaselineUrl = `http://127.0.0.1:${oldBaselinePort}`;
  environment.push(
    `service: ${serviceCommand.how}, NODE_ENV=production, LOG_LEVEL=warn, DATABASE_POOL_SIZE=${poolSize}${args['cpu-prof'] ? ', **--cpu-prof**' : ''}`,
    `baseline: \`bench/baseline-server.ts\` compiled with tsc, run with node (node:http + pg, prepared statements, pool of ${poolSize}, the service's JSON)`,
    `load: wrk (C, one thread, Lua script checking every answer), ${load.connections} connections, ${load.warmup} s warm-up + ${load.duration} s measured per run; ${ROUNDS} rounds per workload, each the baseline then the service, one at a time, from the same 127.0.0.1 machine; each system's median round is shown, with p50 and p99 the medians of the rounds' own`,
  );
  const results: WorkloadResult[] = [];
  // Watches the benchmark database: idle between runs, and its backends' CPU time.
  const monitor = new pg.Client({ connectionString: benchUrl });
  await monitor.connect();
  try {
    await Promise.all([
      service.waitReady(`${serviceUrl}/readyz`),
      baseline.waitReady(`${baselineUrl}/healthz`),
      oldBaseline.waitReady(`${oldBaselineUrl}/healthz`),
    ]);
    const deep = await sample(serviceUrl, deepCursorQuery(900_000));
    const deepCursor = deep.ok ? dig(deep.answer, 'data', 'metrics', 'pageInfo', 'endCursor') : undefined;
    if (typeof deepCursor !== 'string')
      throw new Error(`could not get the cursor of row 900,000: ${JSON.stringify(deep)}`);

    const measure = (server: Service, baseUrl: string, target: Target, connections: number) =>
      runLoad(
        baseUrl,
        target,
        { ...load, connections },
        {
          settle: () => waitForIdleDatabase(monitor),
          cpu: async () => ({
            server: await cpuMsByPid(server.child.pid ? [server.child.pid] : []),
            // Backends of the benchmark database only: other databases' work is not counted.
            postgres: await cpuMsByPid(await backendPids(monitor)),
            machine: new Map([[0, (await machineBusyMs()) ?? 0]]),
          }),
        },
      );
    for (const workload of workloads(deepCursor)) {
      if (only && !only.includes(workload.id)) continue;
      const workloadNotes: string[] = [];
      if (workload.baseline) {
        const problem = await checkSample(baselineUrl, workload.baseline, workload, 'baseline');
        if (problem) workloadNotes.push(problem);
      }
      const problem = await checkSample(serviceUrl, workload.service, workload, 'service');
      if (problem) workloadNotes.push(problem);
      for (const note of workloadNotes) log(`  problem: ${note}`);
      const runs = workload.alsoSerial ? [load.connections, 1] : [load.connections];
      for (const connections of runs) {
        const label = `W${workload.id} ${workload.title} (${connections} connection${connections === 1 ? '' : 's'})`;
        const baselineRounds: LoadResult[] = [];
        const serviceRounds: LoadResult[] = [];
        // Interleaved: drift on the machine falls on both systems alike.
        // The single-connection runs say what one request costs; one round of them is enough.
        const rounds = connections === load.connections ? (workload.rounds ?? ROUNDS) : 1;
        for (let round = 1; round <= rounds; round++) {
          if (workload.baseline) {
            const result = await measure(baseline, baselineUrl, workload.baseline, connections);
            log(`${label} round ${round}: baseline ${describe(result)}`);
            baselineRounds.push(result);
          }
          const result = await measure(service, serviceUrl, workload.service, connections);
          log(`${label} round ${round}: service ${describe(result)}`);
          serviceRounds.push(result);
        }
        if (workload.id === '1' && connections === load.connections) {
          const previous = await measure(oldBaseline, oldBaselineUrl, OLD_BASELINE_FIRST_PAGE, connections);
          const limit = medianRun(baselineRounds);
          notes.push(
            `W1: the earlier baseline (tsx, statements not prepared, a smaller JSON without cursors) served ${int(previous.requestsPerSecond)} req/s in this run, the new one ${limit ? int(limit.requestsPerSecond) : 'n/a'} (${limit ? ratio(limit.requestsPerSecond / previous.requestsPerSecond) : 'n/a'} of it)`,
          );
        }
        results.push({
          workload,
          connections,
          baseline: medianRun(baselineRounds),
          service: medianRun(serviceRounds) as LoadResult,
          rounds: { baseline: baselineRounds, service: serviceRounds },
          notes: connections === load.connections ? workloadNotes : [],
        });
      }
    }
  } finally {
    await monitor.end();
    const code = await service.stop();
    await baseline.stop();
    await oldBaseline.stop();
    if (code !== 0)
      notes.push(`the service exited with ${code} on SIGTERM: ${service.output.join('').slice(-500)}`);
    if (args['cpu-prof']) log(`CPU profile written to ${relative(ROOT, join(CACHE_DIR, 'profiles'))}/`);
  }
  return results;
}

/** A whole number option of the sources mode; `fallback` when not given. */
function count(name: keyof typeof args, fallback: number, least = 1): number {
  const given = args[name];
  if (given === undefined) return fallback;
  const value = Number(given);
  if (!Number.isSafeInteger(value) || value < least) throw new Error(`--${name}: a whole number >= ${least}`);
  return value;
}

/** The sizes the sources mode takes, by option: a run given none of them is the full one. */
const SOURCES_SIZES = [
  'sources-parts',
  'sources-count',
  'sources-questions',
  'sources-hours',
  'sources-step',
  'ingest-rows',
  'ingest-sources',
  'ingest-rounds',
  'writers',
  'writers-rate',
  'writers-seconds',
  'writers-subscribers',
  'registry-sources',
] as const;

async function runSources(
  serviceCommand: Awaited<ReturnType<typeof build>>,
  environment: string[],
  date: string,
): Promise<void> {
  const parts = (args['sources-parts']?.split(',') ?? [...SOURCES_PARTS]).map((part) => part.trim());
  for (const part of parts) {
    if (!(SOURCES_PARTS as readonly string[]).includes(part))
      throw new Error(`--sources-parts: unknown part ${part} (${SOURCES_PARTS.join(', ')})`);
  }
  const counts = (args['sources-count'] ?? '1000,10000').split(',').map((n) => {
    const value = Number(n.trim());
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`--sources-count: ${n} is not a number of sources`);
    return value;
  });
  const step = args['sources-step'] === undefined ? undefined : count('sources-step', 10);
  const report = await benchSources({
    parts: parts as SourcesPart[],
    counts,
    stepOf: (sources) => step ?? defaultStep(sources),
    questions: args['sources-questions']?.split(',').map((id) => id.trim()),
    hours: count('sources-hours', 24),
    ingest: {
      rows: count('ingest-rows', 10_000_000),
      sources: count('ingest-sources', 1000),
      stepSeconds: 10,
      rounds: count('ingest-rounds', 3),
    },
    writers: {
      writers: count('writers', 200),
      rate: count('writers-rate', 1000),
      seconds: count('writers-seconds', 300),
      subscribers: count('writers-subscribers', 100, 0),
    },
    registrySources: count('registry-sources', 100_000),
    benchUrl,
    service: args['cpu-prof']
      ? { ...serviceCommand, args: [...PROFILE_FLAGS, ...serviceCommand.args] }
      : serviceCommand,
    load,
    log,
  });
  const markdown = [
    `# Sources benchmark, ${date}`,
    '',
    ...environment.map((line) => `- ${line}`),
    `- services: ${serviceCommand.how}, NODE_ENV=production, LOG_LEVEL=warn, ACCESS_LOG=false, DATABASE_POOL_SIZE=${poolSize}; the reads' services with AGGREGATE_CACHE_BYTES=0 (every answer computed, never remembered)`,
    `- load: wrk (one thread, Lua script checking every answer), ${load.connections} connections unless said, ${load.warmup} s warm-up + ${load.duration} s measured per run, from the same machine over loopback`,
    `- whole run: ${elapsed()}; load average at start ${startLoad}, at end ${loadavg()[0]?.toFixed(2)} (other work on the machine shows up here)`,
    '',
    ...renderSources(report),
  ].join('\n');
  process.stdout.write(`\n${markdown}\n`);
  const full = SOURCES_SIZES.every((option) => args[option] === undefined);
  const output = args.output ?? (full ? join(ROOT, 'bench/results', `${date}-sources.md`) : undefined);
  if (output) {
    await mkdir(join(output, '..'), { recursive: true });
    await writeFile(output, markdown);
    log(`wrote ${relative(ROOT, output)}`);
  }
}

/** The sizes the agents mode takes: a run given none of them is the full one. */
const AGENTS_SIZES = [
  'agents-sources',
  'agents-steps',
  'agents-batch',
  'agents-senders',
  'agents-rounds',
  'agents-systems',
] as const;

async function runAgents(
  serviceCommand: Awaited<ReturnType<typeof build>>,
  environment: string[],
  date: string,
): Promise<void> {
  const systems = (args['agents-systems']?.split(',') ?? [...AGENT_SYSTEMS]).map((system) => system.trim());
  for (const system of systems) {
    if (!(AGENT_SYSTEMS as readonly string[]).includes(system))
      throw new Error(`--agents-systems: unknown system ${system} (${AGENT_SYSTEMS.join(', ')})`);
  }
  const report = await benchAgents({
    benchUrl,
    service: args['cpu-prof']
      ? { ...serviceCommand, args: [...PROFILE_FLAGS, ...serviceCommand.args] }
      : serviceCommand,
    sources: count('agents-sources', 100),
    steps: count('agents-steps', 5000),
    stepSeconds: 10,
    batchPoints: count('agents-batch', 2000),
    senders: count('agents-senders', 4),
    rounds: count('agents-rounds', 3),
    systems: systems as AgentSystem[],
    // Profiling: where PostgreSQL's time goes too.
    sampleBackends: args['cpu-prof'],
    log,
  });
  if (args['cpu-prof']) log(`CPU profiles written to ${relative(ROOT, join(CACHE_DIR, 'profiles'))}/`);
  const markdown = [
    `# Agents benchmark, ${date}`,
    '',
    ...environment.map((line) => `- ${line}`),
    `- whole run: ${elapsed()}; load average at start ${startLoad}, at end ${loadavg()[0]?.toFixed(2)} (other work on the machine shows up here)${args['cpu-prof'] ? '; **the services ran with --cpu-prof**' : ''}`,
    '',
    ...renderAgents(report),
  ].join('\n');
  process.stdout.write(`\n${markdown}\n`);
  const full = AGENTS_SIZES.every((option) => args[option] === undefined) && !args['cpu-prof'];
  const output = args.output ?? (full ? join(ROOT, 'bench/results', `${date}-agents.md`) : undefined);
  if (output) {
    await mkdir(join(output, '..'), { recursive: true });
    await writeFile(output, markdown);
    log(`wrote ${relative(ROOT, output)}`);
  }
}

async function main() {
  const date = new Date().toISOString().slice(0, 10);
  const notes: string[] = [];
  const postgres = await withClient(databaseUrl(benchUrl, 'postgres'), async (client) => {
    const result = await client.query<{ server_version: string }>('SHOW server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  });
  const environment = [
    `commit ${await gitDescription()}; Node ${process.version}; PostgreSQL ${postgres}; ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
  ];

  // First: the build also generates the Prisma client, which the generator and ingest scripts import.
  const serviceCommand = await build();
  if (args.scale) {
    const scale = await benchScale(benchUrl, log);
    const markdown = [
      `# Scale benchmark, ${date}`,
      '',
      ...environment.map((line) => `- ${line}`),
      `- service: ${serviceCommand.how}, AGGREGATE_CACHE_BYTES=0 (every answer computed); one connection, sequential requests, p50 after unmeasured requests for 2 s (at least three)`,
      `- whole run: ${elapsed()}`,
      '',
      ...renderScale(scale),
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const output = args.output ?? join(ROOT, 'bench/results', `${date}-scale.md`);
    await mkdir(join(output, '..'), { recursive: true });
    await writeFile(output, markdown);
    log(`wrote ${relative(ROOT, output)}`);
    return;
  }
  if (args.sources) {
    await runSources(serviceCommand, environment, date);
    return;
  }
  if (args.agents) {
    await runAgents(serviceCommand, environment, date);
    return;
  }
  const files = await ensureDataFiles(log);
  const loadStarted = performance.now();
  const state = await ensureBenchData(benchUrl, files, log);
  environment.push(
    `dataset: ${DATASET.rows.toLocaleString('en')} samples one a second from ${new Date(DATASET.startSeconds * 1000).toISOString()} (scripts/generate-metrics.ts --seed ${DATASET.seed}) in \`${databaseName(benchUrl)}\`: ${state === 'reused' ? 'reused' : `loaded with npm run ingest in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s`}`,
  );

  const httpWanted =
    !args['skip-http'] && (only === undefined || only.some((id) => id !== 'obs' && id !== 'live'));
  const http = httpWanted ? await runHttp(serviceCommand, notes, environment) : [];
  let observability: ObservabilityResult | undefined;
  if (!args['skip-observability'] && (only === undefined || only.includes('obs'))) {
    const monitor = new pg.Client({ connectionString: benchUrl });
    await monitor.connect();
    try {
      observability = await benchObservability({
        service: serviceCommand,
        databaseUrl: benchUrl,
        load,
        settle: () => waitForIdleDatabase(monitor),
        cpu: async (pid) => ({
          server: await cpuMsByPid(pid ? [pid] : []),
          postgres: await cpuMsByPid(await backendPids(monitor)),
        }),
        log,
      });
    } finally {
      await monitor.end();
    }
  }
  const live: LiveDeliveryResult[] = [];
  const liveShapes = args['live-shapes'].split(',').map((shape) => shape.trim());
  for (const shape of liveShapes) {
    if (shape !== 'batch' && shape !== 'sample') throw new Error(`--live-shapes: unknown shape ${shape}`);
    if (args['skip-live'] || (only !== undefined && !only.includes('live'))) break;
    live.push(
      await benchLiveDelivery({
        service: args['cpu-prof']
          ? { ...serviceCommand, args: [...PROFILE_FLAGS, ...serviceCommand.args] }
          : serviceCommand,
        serverUrl: benchUrl,
        shape,
        subscribers: Number(args['live-subscribers']),
        samplesPerSecond: Number(args['live-rate']),
        batchesPerSecond: 10,
        seconds: Number(args['live-seconds']),
        log,
      }),
    );
  }
  let ingest: IngestResult[] = [];
  if (!args['skip-ingest'] && only === undefined) {
    log('ingest: npm run ingest vs psql \\copy');
    ingest = await benchIngest(benchUrl, files, log);
  }
  environment.push(
    `whole run: ${elapsed()} (npm run bench); load average at start ${startLoad}, at end ${loadavg()[0]?.toFixed(2)} (other work on the machine shows up here)`,
  );

  const markdown = renderReport({
    date,
    connections: load.connections,
    environment,
    http,
    ingest,
    observability,
    live,
    notes,
  });
  process.stdout.write(`\n${markdown}\n`);
  const output = args.output ?? (partial ? undefined : join(ROOT, 'bench/results', `${date}.md`));
  if (output) {
    await mkdir(join(output, '..'), { recursive: true });
    await writeFile(output, markdown);
    log(`wrote ${relative(ROOT, output)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
