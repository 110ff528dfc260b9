import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Node's flags for the service, as `npm start` runs it (package.json), given to every Node server
 * a benchmark compares it with too: a young generation of up to 64 MB (V8's default is 16 MB), so
 * that a large answer (a year by hour: 8,760 buckets) is not copied through several scavenges.
 */
export const NODE_FLAGS = ['--max-semi-space-size=64'];

/**
 * The environment of a service the bench starts: `base` (the bench's own, or one cleaned of some
 * variables) with production mode on `databaseUrl`, listening on `port` of loopback.
 */
export function productionEnv(
  base: NodeJS.ProcessEnv,
  databaseUrl: string,
  port: number,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    ...base,
    NODE_ENV: 'production',
    // Production refuses to start with an unprotected /metrics; this one listens on loopback alone.
    METRICS_PUBLIC: 'true',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    ...extra,
  };
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion, capturing its output. */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
        ms: performance.now() - started,
      }),
    );
    options.onSpawn?.(child);
  });
}

/** Fails with the command's output when it does not exit with 0. */
export async function mustRun(
  command: string,
  args: string[],
  options: Parameters<typeof runCommand>[2] = {},
): Promise<CommandResult> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.code}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A long-running child (a server) whose output is kept for error messages. */
export class Service {
  readonly output: string[] = [];
  private exited: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString());
      if (this.output.length > 200) this.output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  static start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Service {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new Service(name, child);
  }

  /** Polls `url` until it answers 200, the process dies, or `timeoutMs` passes. */
  async waitReady(url: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) {
        throw new Error(
          `${this.name} exited (${this.exitCode}) before it was ready:\n${this.output.join('')}`,
        );
      }
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} was not ready at ${url} within ${timeoutMs} ms:\n${this.output.join('')}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

async function childrenOf(pid: number): Promise<number[]> {
  const all = await readdir('/proc').catch(() => [] as string[]);
  const children: number[] = [];
  for (const entry of all) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Field 4 is the parent pid; the command name (field 2) may hold spaces but ends with ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children;
}

async function peakRssKb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** The resident set size of a running process now (VmRSS), in KiB; 0 when it is gone. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

/**
 * Polls /proc for the peak RSS (VmHWM) of `pid` and all its descendants every `intervalMs`; the
 * largest single process wins, as `/usr/bin/time -v` reports it. VmHWM only grows, so a poll
 * shortly before a process exits still sees its peak.
 */
export function watchPeakRss(pid: number, intervalMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const pids = [pid];
      for (let i = 0; i < pids.length; i++) pids.push(...(await childrenOf(pids[i] as number)));
      for (const p of pids) peak = Math.max(peak, (await peakRssKb(p)) ?? 0);
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

export const GNU_TIME = '/usr/bin/time';
export const hasGnuTime = () => existsSync(GNU_TIME);

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux everywhere). */
const TICKS_PER_SECOND = 100;

async function cpuTicks(pid: number | string): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
  return Number(fields[11]) + Number(fields[12]);
}

/** User + system CPU milliseconds used so far by one process. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  const ticks = await cpuTicks(pid);
  return ticks === undefined ? undefined : (ticks * 1000) / TICKS_PER_SECOND;
}

/** User + system CPU milliseconds used so far by each of `pids` that still runs. */
export async function cpuMsByPid(pids: number[]): Promise<Map<number, number>> {
  const result = new Map<number, number>();
  for (const pid of pids) {
    const ms = await processCpuMs(pid);
    if (ms !== undefined) result.set(pid, ms);
  }
  return result;
}

/** Busy CPU milliseconds of the whole machine so far (all cores), from /proc/stat. */
export async function machineBusyMs(): Promise<number | undefined> {
  const stat = await readFile('/proc/stat', 'utf8').catch(() => undefined);
  const fields = stat?.split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number);
  if (!fields || fields.length < 5) return undefined;
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICKS_PER_SECOND;
}
