/**
 * Makes the partitions of metrics for a time range ahead of a bulk back-fill.
 * Run `npm run partitions -- --help`; the command itself is src/cli/partitions/run.ts.
 */
import { run } from '../src/cli/partitions/run.js';
import { loadEnv } from '../src/config.js';

process.exitCode = await run(process.argv.slice(2), {
  env: loadEnv(),
  stdout: process.stdout,
  stderr: process.stderr,
});
