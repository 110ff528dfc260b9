import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ExecProtocolOptionsStream, PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '../observability/logger.js';
import { projectRoot } from '../paths.js';
import { type Notification, NotificationScanner } from './embedded-notifications.js';
import { migrateDeploy } from './migrations.js';

export interface EmbeddedDatabase {
  url: string;
  /** Whether this start created the data directory. */
  created: boolean;
  /**
   * Every notification the database sends, whichever socket connection's statement caused it:
   * PGlite is one session, so a NOTIFY comes back only to the connection that was talking, which
   * may be another process (the ingest command writing through this server).
   */
  onNotification(listener: (notification: Notification) => void): void;
  stop(): Promise<void>;
}

/** Who has a data directory open: the process, and the address it serves the database on once it does. */
export interface EmbeddedHolder {
  pid: number;
  url?: string;
}

/** The file in the data directory naming its holder; PGlite itself takes no lock. */
export const LOCK_FILE = 'metrics-api.lock';

/** The data directory is open in another live process: PGlite would corrupt it, or lose writes. */
export class EmbeddedDatabaseInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: EmbeddedHolder,
  ) {
    super(
      `the embedded database in ${dataDir} is open in process ${holder.pid}` +
        `${holder.url ? ` (serving it at ${holder.url})` : ' (still starting)'}; ` +
        'one process at a time can open it: stop that process first, or set EMBEDDED_DATA_DIR to another ' +
        `folder (or DATABASE_URL). If process ${holder.pid} is not metrics-api, delete ${join(dataDir, LOCK_FILE)}.`,
    );
    this.name = 'EmbeddedDatabaseInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(lockPath: string): Promise<EmbeddedHolder | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const holder = JSON.parse(text) as Partial<EmbeddedHolder>;
    if (typeof holder.pid === 'number') return { pid: holder.pid, url: holder.url };
  } catch {}
  // Half written: its writer died mid-write, and holds nothing.
  return undefined;
}

/** The holder a lock file names, when that process is alive; a dead one's lock is stale. */
async function liveHolder(lockPath: string): Promise<EmbeddedHolder | undefined> {
  const holder = await readHolder(lockPath);
  return holder && holder.pid > 0 && isAlive(holder.pid) ? holder : undefined;
}

/** The live process holding `dataDir` (the configured EMBEDDED_DATA_DIR), if any. */
export function embeddedHolder(dataDir: string): Promise<EmbeddedHolder | undefined> {
  return liveHolder(join(resolve(projectRoot, dataDir), LOCK_FILE));
}

/** Replaces the lock file's content in one step, so a reader never sees half of it. */
async function writeHolder(lockPath: string, holder: EmbeddedHolder): Promise<void> {
  const temporary = `${lockPath}.${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(holder)}\n`);
  await rename(temporary, lockPath);
}

/**
 * Takes the data directory for this process, or throws EmbeddedDatabaseInUseError naming the
 * live process that has it. A lock left by a process that died (kill -9, a crash) is taken over.
 */
async function lockDataDir(dataDir: string): Promise<string> {
  const lockPath = join(dataDir, LOCK_FILE);
  const mine = `${JSON.stringify({ pid: process.pid } satisfies EmbeddedHolder)}\n`;
  // A stale lock is removed and the exclusive create tried again; a third failure means another
  // process keeps taking it in between.
  for (let attempt = 1; ; attempt++) {
    try {
      await writeFile(lockPath, mine, { flag: 'wx' });
      return lockPath;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 3) throw error;
    }
    const holder = await liveHolder(lockPath);
    if (holder) throw new EmbeddedDatabaseInUseError(dataDir, holder);
    await unlink(lockPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}

/** Removes the lock file, if it is still this process's. */
async function unlockDataDir(lockPath: string): Promise<void> {
  const holder = await readHolder(lockPath);
  if (holder?.pid === process.pid) await unlink(lockPath).catch(() => {});
}

/**
 * PGlite whose every answer to a socket connection is also read for notifications (the socket
 * server hands each connection only its own answers).
 */
class AnnouncingPGlite extends PGlite {
  readonly listeners = new Set<(notification: Notification) => void>();

  override execProtocolRawStream(message: Uint8Array, options: ExecProtocolOptionsStream): Promise<void> {
    if (this.listeners.size === 0) return super.execProtocolRawStream(message, options);
    const scanner = new NotificationScanner((notification) => {
      for (const listener of this.listeners) listener(notification);
    });
    return super.execProtocolRawStream(message, {
      ...options,
      onRawData: (data) => {
        scanner.push(data);
        options.onRawData(data);
      },
    });
  }
}

/**
 * Runs PGlite (PostgreSQL compiled to WebAssembly) persisted in `dataDir`, served over the
 * Postgres wire protocol on a loopback port so the service uses the same adapter-pg code path as
 * with a real server. Pending migrations are applied on every start. One process at a time opens
 * a data directory: a lock file in it names the holder and the address it serves the database on,
 * so another process is refused before it opens anything (EmbeddedDatabaseInUseError), and a
 * command can write through the server instead.
 */
export async function startEmbeddedDatabase(options: {
  dataDir: string;
  maxConnections: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const dataDir = resolve(projectRoot, options.dataDir);
  const started = performance.now();
  const created = await mkdir(dataDir, { recursive: true }).then((made) => made !== undefined);
  const lockPath = await lockDataDir(dataDir);
  let db: AnnouncingPGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  const stop = async () => {
    await server?.stop();
    await db?.close();
    await unlockDataDir(lockPath);
  };
  try {
    options.logger.info(
      { dataDir },
      created
        ? 'Creating the embedded database (first start takes up to 15 s)'
        : 'Opening the embedded database (about 2 s)',
    );
    db = new AnnouncingPGlite(dataDir);
    await db.waitReady;
    server = new PGLiteSocketServer({
      db,
      host: '127.0.0.1',
      port: 0,
      maxConnections: options.maxConnections,
    });
    await server.start();
    const url = `postgresql://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
    await migrateDeploy(url);
    await writeHolder(lockPath, { pid: process.pid, url });
    options.logger.info({ ms: Math.round(performance.now() - started), url }, 'Embedded database ready');
    const listeners = db.listeners;
    return { url, created, stop, onNotification: (listener) => listeners.add(listener) };
  } catch (error) {
    await stop();
    throw error;
  }
}
