import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { closedPort } from './ports.js';

export interface Pgbouncer {
  /** `databaseUrl` with its host and port replaced by pgbouncer's. */
  url: string;
  /** The transactions pgbouncer has run for `database` (its SHOW STATS). */
  transactions(database: string): Promise<number>;
  /** The application_name of each client connected to pgbouncer (its SHOW CLIENTS). */
  clients(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Debian's pgbouncer in transaction mode in front of the server `databaseUrl` names, on a free
 * loopback port: every transaction may run on another server connection, as in production setups
 * that put it before many API instances. It refuses to run as root: as root it drops to postgres.
 */
export async function startPgbouncer(
  databaseUrl: string,
  binary = '/usr/sbin/pgbouncer',
): Promise<Pgbouncer> {
  const target = new URL(databaseUrl);
  const dir = await mkdtemp(join(tmpdir(), 'metrics-api-pgbouncer-'));
  await chmod(dir, 0o777);
  const port = await closedPort();
  const user = decodeURIComponent(target.username || 'postgres');
  await writeFile(join(dir, 'users.txt'), `"${user}" ""\n`);
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `admin_users = ${user}`,
      'pool_mode = transaction',
      // Fewer server connections than the service's pool has clients: transactions must share them.
      'default_pool_size = 3',
      'max_client_conn = 200',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  const args = [join(dir, 'pgbouncer.ini')];
  if (process.getuid?.() === 0) args.unshift('-u', 'postgres');
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = new URL(databaseUrl);
  url.host = `127.0.0.1:${port}`;
  const admin = `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/pgbouncer`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${stderr}`);
    const client = new pg.Client({ connectionString: url.toString() });
    const ok = await client.connect().then(
      () => true,
      () => false,
    );
    await client.end().catch(() => {});
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not accept connections: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The admin console speaks only the simple query protocol, which pg uses for queries without values.
  const show = async <Row extends pg.QueryResultRow>(what: string): Promise<Row[]> => {
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    try {
      return (await client.query<Row>(`SHOW ${what}`)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    url: url.toString(),
    async transactions(database) {
      const rows = await show<{ database: string; total_xact_count: string }>('STATS');
      return Number(rows.find((row) => row.database === database)?.total_xact_count ?? 0);
    },
    async clients() {
      const rows = await show<{ database: string; application_name: string }>('CLIENTS');
      return rows.filter((row) => row.database !== 'pgbouncer').map((row) => row.application_name);
    },
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
