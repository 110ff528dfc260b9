/**
 * Checks the rollups against the raw rows, or rebuilds them from the raw rows.
 * Run `npm run rollups -- --help` for the options; the command itself is src/cli/rollups/run.ts.
 */
import { run } from '../src/cli/rollups/run.js';
import { loadEnv } from '../src/config.js';

process.exitCode = await run(process.argv.slice(2), {
  env: loadEnv(),
  stdout: process.stdout,
  stderr: process.stderr,
});
