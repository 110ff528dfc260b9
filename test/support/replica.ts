import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { closedPort } from './ports.js';

const run = promisify(execFile);

/** The server binaries of the PostgreSQL that answers on 127.0.0.1:5432 (Debian keeps them off PATH). */
async function binDir(): Promise<string> {
  const { stdout } = await run('pg_config', ['--bindir']);
  return stdout.trim();
}

/**
 * Runs a PostgreSQL server binary as `postgres` when this process is root (initdb and the server
 * refuse to run as root), as this user otherwise.
 */
function asPostgres(binary: string, args: string[]) {
  const isRoot = process.getuid?.() === 0;
  return isRoot ? run('runuser', ['-u', 'postgres', '--', binary, ...args]) : run(binary, args);
}

export interface ReplicatedCluster {
  primaryUrl: string;
  standbyUrl: string;
  /** Stops replaying WAL on the standby: it keeps answering, from the state it had. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Waits until the standby has replayed everything the primary has written so far. */
  caughtUp(timeoutMs?: number): Promise<void>;
  stopStandby(): Promise<void>;
  startStandby(): Promise<void>;
  /** Stops the primary as a restart or failover does (`-m fast`: every session ended with 57P01). */
  stopPrimary(): Promise<void>;
  startPrimary(): Promise<void>;
  /**
   * Cuts the standby off from its primary while both keep running, as a network partition does:
   * its WAL receiver is pointed at a port nothing listens on, and the primary's walsender ended.
   * The standby keeps answering reads, from the state it had.
   */
  cutOff(): Promise<void>;
  /** Points the standby's WAL receiver at its primary again. */
  reconnect(): Promise<void>;
  stop(): Promise<void>;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A primary of its own (initdb, trust on loopback, replication allowed) and a streaming standby
 * made from it with `pg_basebackup -R`, each on a free loopback port, in a temporary directory.
 * Its own primary rather than the shared 127.0.0.1:5432: a base backup copies the whole cluster,
 * and replication needs a pg_hba.conf line the shared server does not have.
 */
export async function startReplicatedCluster(): Promise<ReplicatedCluster> {
  const bin = await binDir();
  const root = await mkdtemp(join(tmpdir(), 'metrics-api-replica-'));
  await chmod(root, 0o777);
  const primaryDir = join(root, 'primary');
  const standbyDir = join(root, 'standby');
  const [primaryPort, standbyPort] = [await closedPort(), await closedPort()];
  const pgctl = (dir: string, ...args: string[]) =>
    asPostgres(join(bin, 'pg_ctl'), ['-D', dir, '-w', '-l', `${dir}.log`, ...args]);
  const serverOptions = (port: number) =>
    `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${root}`;

  await asPostgres(join(bin, 'initdb'), ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '--no-sync']);
  await writeFile(
    join(root, 'pg_hba.conf'),
    'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n',
  );
  await asPostgres('cp', [join(root, 'pg_hba.conf'), join(primaryDir, 'pg_hba.conf')]);
  const startPrimary = async () => {
    await pgctl(primaryDir, '-o', serverOptions(primaryPort), 'start');
  };
  await startPrimary();
  const primaryUrl = `postgresql://postgres@127.0.0.1:${primaryPort}/postgres`;
  await asPostgres(join(bin, 'pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    standbyDir,
    '-R',
    '--checkpoint=fast',
    '--no-sync',
  ]);
  const startStandby = async () => {
    await pgctl(standbyDir, '-o', serverOptions(standbyPort), 'start');
  };
  await startStandby();
  const standbyUrl = `postgresql://postgres@127.0.0.1:${standbyPort}/postgres`;

  return {
    primaryUrl,
    standbyUrl,
    async pauseReplay() {
      await query(standbyUrl, 'SELECT pg_wal_replay_pause()');
    },
    async resumeReplay() {
      await query(standbyUrl, 'SELECT pg_wal_replay_resume()');
    },
    async caughtUp(timeoutMs = 10_000) {
      const [target] = await query<{ lsn: string }>(primaryUrl, 'SELECT pg_current_wal_lsn()::text AS lsn');
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [state] = await query<{ replayed: boolean }>(
          standbyUrl,
          `SELECT pg_last_wal_replay_lsn() >= '${target?.lsn}'::pg_lsn AS replayed`,
        );
        if (state?.replayed) return;
        if (Date.now() > deadline) throw new Error(`the standby did not replay up to ${target?.lsn}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stopStandby() {
      await pgctl(standbyDir, '-m', 'fast', 'stop');
    },
    startStandby,
    async stopPrimary() {
      await pgctl(primaryDir, '-m', 'fast', 'stop');
    },
    startPrimary,
    async cutOff() {
      const nowhere = `host=127.0.0.1 port=${await closedPort()} user=postgres`;
      await query(standbyUrl, `ALTER SYSTEM SET primary_conninfo = '${nowhere}'`);
      await query(standbyUrl, 'SELECT pg_reload_conf()');
      await query(primaryUrl, 'SELECT pg_terminate_backend(pid) FROM pg_stat_replication');
    },
    async reconnect() {
      // `pg_basebackup -R` wrote primary_conninfo into postgresql.auto.conf; ALTER SYSTEM
      // writes the same file, so this restores that line.
      await query(
        standbyUrl,
        `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=postgres'`,
      );
      await query(standbyUrl, 'SELECT pg_reload_conf()');
    },
    async stop() {
      await pgctl(standbyDir, '-m', 'immediate', 'stop').catch(() => {});
      await pgctl(primaryDir, '-m', 'immediate', 'stop').catch(() => {});
      await rm(root, { recursive: true, force: true });
    },
  };
}
