/**
 * Loads metric samples from JSON, NDJSON or CSV files (or standard input) into the metrics table.
 * Run `npm run ingest -- --help` for the options; the command itself is src/cli/ingest/run.ts.
 */
import { run } from '../src/cli/ingest/run.js';
import { loadEnv } from '../src/config.js';

// A reader that closes the pipe early (`| head`) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await run(process.argv.slice(2), {
  env: loadEnv(),
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
