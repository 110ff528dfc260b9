// Nesting and size limits of the JSON array reader: 640 KB of gzipped `[[[[...` once grew the
// ingest command to 1.6 GB and killed it (SIGTRAP) with no summary.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING } from '../src/ingest/readers.js';
import { projectRoot } from '../src/paths.js';
import {
  ingestFixture,
  rejectionKeys,
  runIngest,
  scriptEnv,
  storedRows,
  summaryLine,
} from './support/ingest.js';

const fixture = ingestFixture();

/** Gzipped '[' until the compressed file reaches `compressedBytes` (gzip shrinks it some 1000 times). */
async function gzippedBrackets(path: string, compressedBytes: number): Promise<number> {
  const gzip = createGzip({ level: 9 });
  const file = createWriteStream(path);
  gzip.pipe(file);
  let compressed = 0;
  gzip.on('data', (chunk: Buffer) => {
    compressed += chunk.length;
  });
  const chunk = Buffer.alloc(1 << 20, '[');
  let uncompressed = 0;
  while (compressed < compressedBytes) {
    if (!gzip.write(chunk)) await once(gzip, 'drain');
    uncompressed += chunk.length;
  }
  gzip.end();
  await once(file, 'finish');
  return uncompressed;
}

describe('the JSON array reader', () => {
  it('refuses 640 KB of gzipped [[[[... at its line, in bounded memory, with a summary and exit code 1', async () => {
    const input = join(fixture.dir.path, 'brackets.json.gz');
    const uncompressed = await gzippedBrackets(input, 640 * 1024);
    expect((await stat(input)).size).toBeGreaterThanOrEqual(640 * 1024);
    expect(uncompressed).toBeGreaterThan(500 * 1024 * 1024);

    // GNU time's maximum resident set size of the command, as a user runs it.
    const rssFile = join(fixture.dir.path, 'max-rss');
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%M', '-o', rssFile, process.execPath, '--import', 'tsx', 'scripts/ingest.ts', input],
      { cwd: projectRoot, env: scriptEnv(fixture.db.url), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const [code, signal] = await once(child, 'exit');
    expect(signal).toBeNull();
    expect(code, stderr).toBe(1);
    expect(stderr).toContain(
      `${input}:1: record: nested deeper than ${MAX_NESTING} levels; unexpected end of input: the JSON array is not closed with ']'`,
    );
    expect(summaryLine(stderr)).toMatch(/^ingest: read 1, inserted 0, updated 0, duplicates 0, rejected 1,/);
    const maxRssKb = Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1));
    // Node, tsx and the service's modules take some 200 MB; the input, none of it.
    expect(maxRssKb).toBeGreaterThan(0);
    expect(maxRssKb).toBeLessThan(450 * 1024);
  }, 180_000);

  it('refuses an element nested too deep at its own line and loads the elements around it', async () => {
    const deep = `${'['.repeat(MAX_NESTING)}1${']'.repeat(MAX_NESTING)}`;
    const justDeepEnough = `${'['.repeat(MAX_NESTING - 1)}1${']'.repeat(MAX_NESTING - 1)}`;
    const text = [
      '[',
      '{"timestamp": 1795651200, "cpu_load": 0.5, "concurrency": 1},',
      `{"timestamp": 1795651201, "cpu_load": 0.5, "concurrency": 2, "extra": ${deep}},`,
      `{"timestamp": 1795651202, "cpu_load": 0.5, "concurrency": 3, "extra": ${justDeepEnough}},`,
      `{"timestamp": 1795651203, "cpu_load": 0.5, "concurrency": 4, "extra": {"a": ${deep.replaceAll('[', '[{"b":').replaceAll(']', '}]')}}},`,
      '{"timestamp": 1795651204, "cpu_load": 0.5, "concurrency": 5}',
      ']',
    ].join('\n');
    const file = join(fixture.dir.path, 'deep.json');
    await writeFile(file, text);
    const result = await runIngest(fixture.db.url, [file]);
    expect(result.code, result.stderr).toBe(1);
    expect(rejectionKeys(result.stderr)).toEqual([`${file}:3: record`, `${file}:5: record`]);
    expect(result.stderr).toContain(`${file}:3: record: nested deeper than ${MAX_NESTING} levels`);
    expect(summaryLine(result.stderr)).toMatch(/read 5, inserted 3, .* rejected 2,/);
    expect((await storedRows(fixture.db.url)).map((row) => row.concurrency)).toEqual([1, 3, 5]);
  }, 60_000);
});
