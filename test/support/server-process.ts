import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';
import { closedPort } from './ports.js';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** SIGTERM, then waits for the exit; the exit code. */
  stop(): Promise<number | null>;
}

const MAIN = join(projectRoot, 'src/main.ts');
/** tsx by its file URL: a --import specifier resolves from the working directory, which may be a temp one. */
const TSX = import.meta.resolve('tsx');

/** Spawns `src/main.ts` as `npm run dev` runs it; `env` is its whole environment, `PORT` aside. */
export function spawnServer(env: NodeJS.ProcessEnv, options: { cwd?: string; port: number }) {
  const child = spawn(process.execPath, ['--import', TSX, MAIN], {
    cwd: options.cwd ?? projectRoot,
    env: { ...env, HOST: '127.0.0.1', PORT: String(options.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  return { child, output: () => output };
}

/** Spawns the server and waits for it to exit (killed past `timeoutMs`): its exit code and output. */
export async function runUntilExit(
  env: NodeJS.ProcessEnv,
  options: { port: number; timeoutMs?: number },
): Promise<{ code: number | null; output: string }> {
  const { child, output } = spawnServer(env, { port: options.port });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const [code] = await once(child, 'exit');
    return { code: code as number | null, output: output() };
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until a spawned process prints `text`, failing with its output when it exits first or takes over `timeoutMs`. */
export async function waitForOutput(
  spawned: { child: ChildProcess; output(): string },
  text: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!spawned.output().includes(text)) {
    if (spawned.child.exitCode !== null || spawned.child.signalCode !== null)
      throw new Error(
        `exited (${spawned.child.exitCode ?? spawned.child.signalCode}) before "${text}":\n${spawned.output()}`,
      );
    if (Date.now() > deadline) throw new Error(`no "${text}" within ${timeoutMs} ms:\n${spawned.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts the server on a free loopback port and waits until it listens. */
export async function startServer(
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): Promise<ServerProcess> {
  const port = await closedPort();
  const spawned = spawnServer(env, { ...options, port });
  try {
    await waitForOutput(spawned, 'metrics-api listening');
  } catch (error) {
    spawned.child.kill('SIGKILL');
    throw error;
  }
  return {
    ...spawned,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (spawned.child.exitCode !== null) return spawned.child.exitCode;
      const exited = once(spawned.child, 'exit');
      spawned.child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}
