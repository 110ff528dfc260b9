/**
 * Many registered sources: `count` sources inserted into `sources` directly (labels region, tier
 * and zone; last seen spread over 30 days, one in a hundred never seen), no samples. Against the
 * service (one connection, wrk, three rounds): a page of `sources(first: 50)` by NAME and by
 * LAST_SEEN, at the start and deep in each order, and a search by name prefix and by a label.
 *
 * Memory: every page of both orders (pages of 1,000) is read twice, and the service's RSS taken
 * before and after; the same number of page reads of a registry of REFERENCE_SOURCES sources
 * (its pages read again and again) says what the reads cost whatever the number of sources. Flat
 * in the number of sources: the large registry's RSS after the reads within the reference's + 10%.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { databaseUrl, prepareDatabase, waitForIdleDatabase, withClient } from './dataset.js';
import { type RetainedMemory, retainedMemory } from './inspector.js';
import { type LoadOptions, type LoadResult, medianRun, runLoad, sample } from './load.js';
import { cpuMsByPid, freePort, productionEnv, rssKiB, Service } from './processes.js';
import { dig, graphql, type Target } from './workloads.js';

export const REFERENCE_SOURCES = 1000;
const PAGE = 1000;
const ROUNDS = 3;
export const PAGE_TARGET_MS = 5;

export interface RegistryQuestion {
  id: string;
  title: string;
  description: string;
  /** p50 under PAGE_TARGET_MS is the target. */
  targeted: boolean;
  result: LoadResult;
  rounds: LoadResult[];
  problem?: string;
}

export interface RegistryMemory {
  sources: number;
  /** Pages read (both orders, every page, as many times as the large registry's two walks take). */
  pages: number;
  seconds: number;
  beforeKiB: number;
  afterKiB: number;
  /** After the reads and a full garbage collection: what the service keeps. */
  retained: RetainedMemory;
}

export interface RegistryResult {
  sources: number;
  state: 'reused' | 'loaded';
  questions: RegistryQuestion[];
  memory: RegistryMemory[];
}

// `src-000001`...: region, tier and zone labels; last seen within 30 days of 2026-04-01, one in a
// hundred never seen; first seen up to 10 days before that. Hashes, not random draws: the same
// registry each time.
const REGISTRY = `
INSERT INTO sources (name, labels, first_seen, last_seen)
SELECT format('src-%s', lpad(i::text, 6, '0')),
       jsonb_build_object(
         'region', (ARRAY['eu-west', 'us-east', 'ap-south'])[1 + (hashint4(i * 3) & 2147483647) % 3],
         'tier', (ARRAY['web', 'api', 'worker', 'db'])[1 + (hashint4(i * 3 + 1) & 2147483647) % 4],
         'zone', 'z' || (hashint4(i * 3 + 2) & 2147483647) % 16),
       CASE WHEN i % 100 <> 0 THEN seen - interval '1 second' * ((hashint4(-i) & 2147483647) % 864000) END,
       CASE WHEN i % 100 <> 0 THEN seen END
  FROM generate_series(1, $1::int) AS i,
       LATERAL (SELECT timestamptz '2026-04-01' - interval '1 millisecond' * ((hashint4(i) & 2147483647) % 2592000000)) AS s(seen)`;

const MARKER_TABLE = 'bench_dataset';
const markerKey = (count: number) =>
  `registry=${count},sql=${createHash('sha256').update(REGISTRY).digest('hex').slice(0, 12)}`;

/** Makes (or reuses) a database holding `count` registered sources and the default one. */
async function ensureRegistry(
  benchUrl: string,
  count: number,
): Promise<{ url: string; state: 'reused' | 'loaded' }> {
  const url = databaseUrl(benchUrl, `metrics_sources_registry_${count}`);
  await prepareDatabase(url, false);
  const held = await withClient(url, async (client) => {
    const marker = await client.query<{ present: boolean }>(
      `SELECT to_regclass('${MARKER_TABLE}') IS NOT NULL AS present`,
    );
    if (!marker.rows[0]?.present) return false;
    const keys = await client.query<{ key: string }>(`SELECT key FROM ${MARKER_TABLE}`);
    return keys.rows.length === 1 && keys.rows[0]?.key === markerKey(count);
  });
  if (held) return { url, state: 'reused' };
  await prepareDatabase(url, true);
  await withClient(url, async (client) => {
    await client.query(REGISTRY, [count]);
    await client.query(`CREATE TABLE ${MARKER_TABLE} (key text NOT NULL)`);
    await client.query(`INSERT INTO ${MARKER_TABLE} (key) VALUES ($1)`, [markerKey(count)]);
    await client.query('VACUUM (ANALYZE) sources');
  });
  return { url, state: 'loaded' };
}

const PAGE_FIELDS =
  'edges { cursor node { id name labels { name value } firstSeen lastSeen } } pageInfo { hasNextPage endCursor }';

type Order = 'NAME' | 'LAST_SEEN';

/** Reads every page of `order`; returns the cursor at the middle, and checks the order and the count. */
async function walk(url: string, order: Order, expected: number): Promise<{ middle: string; pages: number }> {
  let after: string | undefined;
  let seen = 0;
  let pages = 0;
  let middle: string | undefined;
  let previous: { name: string; lastSeen: string | null } | undefined;
  for (;;) {
    // The cursor as a variable, as Relay and every client library pass it: one document for
    // every page. Inlined, each page would be a document of its own, which the service parses,
    // validates and compiles once seen twice, and keeps while its parse cache does (a bound in
    // documents, whatever the number of sources).
    const answer = await sample(
      url,
      graphql(
        `query SourcesPage($after: String) { sources(first: ${PAGE}, orderBy: ${order}, after: $after) { edges { cursor node { name lastSeen } } pageInfo { hasNextPage endCursor } } }`,
        { after: after ?? null },
      ),
    );
    if (!answer.ok) throw new Error(`sources by ${order}, page ${pages + 1}: ${answer.problem}`);
    const edges = dig(answer.answer, 'data', 'sources', 'edges');
    if (!Array.isArray(edges)) throw new Error(`sources by ${order}: ${answer.text.slice(0, 300)}`);
    pages++;
    for (const edge of edges as { cursor: string; node: { name: string; lastSeen: string | null } }[]) {
      const node = edge.node;
      if (previous) {
        const inOrder =
          order === 'NAME'
            ? previous.name < node.name
            : previous.lastSeen === null
              ? node.lastSeen === null
              : node.lastSeen === null || previous.lastSeen >= node.lastSeen;
        if (!inOrder)
          throw new Error(`sources by ${order}: ${JSON.stringify(node)} after ${JSON.stringify(previous)}`);
      }
      previous = node;
      seen++;
      if (seen === Math.floor(expected / 2)) middle = edge.cursor;
    }
    after = dig(answer.answer, 'data', 'sources', 'pageInfo', 'endCursor') as string | undefined;
    if (dig(answer.answer, 'data', 'sources', 'pageInfo', 'hasNextPage') !== true) break;
  }
  if (seen !== expected) throw new Error(`sources by ${order}: ${seen} sources, expected ${expected}`);
  return { middle: middle ?? '', pages };
}

/** The service on `url`, with its inspector on a loopback port for retainedMemory. */
async function withService<T>(
  service: { command: string; args: string[] },
  url: string,
  fn: (baseUrl: string, pid: number, inspectorPort: number) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const running = Service.start(
    'service (registry)',
    service.command,
    [`--inspect=127.0.0.1:${inspectorPort}`, ...service.args],
    productionEnv(process.env, url, port, { ACCESS_LOG: 'false' }),
  );
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    await running.waitReady(`${baseUrl}/readyz`);
    return await fn(baseUrl, running.child.pid ?? 0, inspectorPort);
  } finally {
    await running.stop();
  }
}

/**
 * Walks both orders once (what compiling and planning the pages takes is not the reads'), then
 * takes the RSS before and after `pages` page reads (walks of both orders until that many); with
 * the cursors at the middle of each order.
 */
async function readPages(
  baseUrl: string,
  pid: number,
  inspectorPort: number,
  sources: number,
  pages: number | ((firstWalks: number) => number),
): Promise<{ memory: RegistryMemory; middle: Record<Order, string> }> {
  const first = {
    NAME: await walk(baseUrl, 'NAME', sources),
    LAST_SEEN: await walk(baseUrl, 'LAST_SEEN', sources),
  };
  const wanted = typeof pages === 'number' ? pages : pages(first.NAME.pages + first.LAST_SEEN.pages);
  const beforeKiB = await rssKiB(pid);
  const started = performance.now();
  let read = 0;
  while (read < wanted) {
    for (const order of ['NAME', 'LAST_SEEN'] as const) read += (await walk(baseUrl, order, sources)).pages;
  }
  return {
    memory: {
      sources,
      pages: read,
      seconds: (performance.now() - started) / 1000,
      beforeKiB,
      afterKiB: await rssKiB(pid),
      retained: await retainedMemory(inspectorPort),
    },
    middle: { NAME: first.NAME.middle, LAST_SEEN: first.LAST_SEEN.middle },
  };
}

export async function benchRegistry(options: {
  benchUrl: string;
  count: number;
  service: { command: string; args: string[] };
  load: LoadOptions;
  log: (line: string) => void;
}): Promise<RegistryResult> {
  const { count, log } = options;
  log(`registry: ${count.toLocaleString('en')} sources`);
  const registry = await ensureRegistry(options.benchUrl, count);
  const total = count + 1;
  const questions: RegistryQuestion[] = [];
  const memory: RegistryMemory[] = [];
  await withService(options.service, registry.url, async (baseUrl, pid, inspectorPort) => {
    log('registry: every page of both orders, read twice');
    const reads = await readPages(baseUrl, pid, inspectorPort, total, (pagesOfAWalk) => 2 * pagesOfAWalk);
    memory.push(reads.memory);
    const monitor = new pg.Client({ connectionString: registry.url });
    await monitor.connect();
    try {
      const page = (args: string) => graphql(`{ sources(${args}) { ${PAGE_FIELDS} } }`);
      const middle = Math.floor(total / 2).toLocaleString('en');
      // The names of a hundred sources (a thousand from 100,000 on), as one types a name.
      const prefix = `src-${String(Math.ceil(count / 2)).padStart(6, '0')}`.slice(
        0,
        count >= 100_000 ? -3 : -2,
      );
      const targets: { id: string; title: string; description: string; targeted: boolean; target: Target }[] =
        [
          {
            id: 'R1',
            title: 'first page of 50 by name',
            description: '`sources(first: 50)`',
            targeted: true,
            target: page('first: 50'),
          },
          {
            id: 'R2',
            title: 'first page of 50 by last seen',
            description: '`sources(first: 50, orderBy: LAST_SEEN)`',
            targeted: true,
            target: page('first: 50, orderBy: LAST_SEEN'),
          },
          {
            id: 'R3',
            title: 'page of 50 by name from the middle',
            description: `the same after the cursor of source ${middle} by name`,
            targeted: true,
            target: page(`first: 50, after: ${JSON.stringify(reads.middle.NAME)}`),
          },
          {
            id: 'R4',
            title: 'page of 50 by last seen from the middle',
            description: `\`sources(first: 50, orderBy: LAST_SEEN)\` after the cursor of source ${middle} by last seen`,
            targeted: true,
            target: page(`first: 50, orderBy: LAST_SEEN, after: ${JSON.stringify(reads.middle.LAST_SEEN)}`),
          },
          {
            id: 'R5',
            title: 'search by name prefix',
            description: `\`sources(namePrefix: "${prefix}", first: 50)\`: what a source picker asks as one types`,
            targeted: false,
            target: page(`namePrefix: "${prefix}", first: 50`),
          },
          {
            id: 'R6',
            title: 'filter by a label',
            description: '`sources(labels: [{name: "zone", value: "z7"}], first: 50)`',
            targeted: false,
            target: page('labels: [{name: "zone", value: "z7"}], first: 50'),
          },
        ];
      for (const question of targets) {
        const answer = await sample(baseUrl, question.target);
        const edges = answer.ok ? dig(answer.answer, 'data', 'sources', 'edges') : undefined;
        const problem = !answer.ok
          ? answer.problem
          : !Array.isArray(edges) || edges.length === 0
            ? `no sources: ${answer.text.slice(0, 300)}`
            : undefined;
        if (problem) log(`  problem: ${question.id}: ${problem}`);
        const rounds: LoadResult[] = [];
        for (let round = 1; round <= ROUNDS; round++) {
          const result = await runLoad(
            baseUrl,
            question.target,
            { ...options.load, connections: 1 },
            {
              settle: () => waitForIdleDatabase(monitor),
              cpu: async () => ({ server: await cpuMsByPid([pid]) }),
            },
          );
          log(
            `registry ${question.id} ${question.title} round ${round}: p50 ${result.p50.toFixed(2)} ms, ${result.errors} errors`,
          );
          rounds.push(result);
        }
        const { target: _, ...described } = question;
        questions.push({
          ...described,
          result: medianRun(rounds) as LoadResult,
          rounds,
          ...(problem ? { problem } : {}),
        });
      }
    } finally {
      await monitor.end();
    }
  });
  const reference = await ensureRegistry(options.benchUrl, REFERENCE_SOURCES);
  const pages = memory[0]?.pages ?? 0;
  log(
    `registry: ${pages} page reads of ${REFERENCE_SOURCES.toLocaleString('en')} sources, for the memory reference`,
  );
  await withService(options.service, reference.url, async (baseUrl, pid, inspectorPort) => {
    memory.push((await readPages(baseUrl, pid, inspectorPort, REFERENCE_SOURCES + 1, pages)).memory);
  });
  return { sources: count, state: registry.state, questions, memory };
}
