import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

/** The channel the metrics_announce trigger notifies (see its migration). */
export const CHANGES_CHANNEL = 'metrics_changes';
/** How the listening connection shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'metrics-api listener';
/** How the connection that checks the listener hears (see PostgresChangeListener) shows in pg_stat_activity. */
export const LISTENER_CHECK_APPLICATION_NAME = 'metrics-api listener check';

/** The listener's connection hears no notification sent from another session. */
export class DeafListenerError extends Error {
  constructor(timeoutMs: number) {
    super(
      `the connection listening for changes heard no notification from another session within ${timeoutMs} ms: ` +
        'DATABASE_LISTEN_URL (by default DATABASE_URL) must reach PostgreSQL itself, not a pooler in transaction mode such as pgbouncer, which cannot keep a LISTEN',
    );
    this.name = 'DeafListenerError';
  }
}

export interface ChangeHandlers {
  /** One notification's payload, as the trigger wrote it. */
  notification(payload: string): void;
  /**
   * The listener is (again) connected and listening. Notifications sent while it was away are
   * lost for good, so whoever follows the changes re-reads from where it was here.
   */
  listening(): void;
}

/** Notifications of the writes to `metrics`, from whichever session made them. */
export interface ChangeListener {
  start(handlers: ChangeHandlers): void;
  /** Whether it is listening now (readiness reports it). */
  readonly listening: boolean;
  close(): Promise<void>;
}

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 5_000;
/** A connection that silently stopped (a half-open TCP link) is found by a trivial query this often. */
const CHECK_INTERVAL_MS = 15_000;

/**
 * `LISTEN` on one dedicated connection to the primary, never one from the pool: a pooled
 * connection (or one behind pgbouncer in transaction mode) is shared between sessions and would
 * lose the `LISTEN`. Each time it listens, it proves that it hears: another, short-lived
 * connection to the same URL notifies a channel of the listener's own, and the listener must hear
 * it within the connect timeout. Behind a pooler in transaction mode the `LISTEN` succeeds and
 * nothing is ever heard; then it logs an error naming DATABASE_LISTEN_URL, is not `listening`
 * (subscribers are answered DATABASE_UNAVAILABLE, the listening gauge is 0), and tries again as
 * after a lost connection. When the connection drops (or stops answering the periodic check) it
 * reconnects with exponential backoff, with jitter so that replicas do not reconnect in lockstep
 * after a failover, from the first attempt on and for as long as it takes, and says so through
 * `listening()` every time it is back. (pg-listen does most of this, but fails for good when its
 * first connection fails, when a reconnect's LISTEN fails, or after 3 s of retries by default.)
 */
export class PostgresChangeListener implements ChangeListener {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #connectTimeoutMs: number;
  #client: pg.Client | undefined;
  #handlers: ChangeHandlers | undefined;
  #retryMs = FIRST_RETRY_MS;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  #listening = false;
  /** The last check found the listener deaf: logged once until it hears again. */
  #deaf = false;

  constructor(url: string, options: { logger: Logger; connectTimeoutMs: number }) {
    this.#url = url;
    this.#logger = options.logger;
    this.#connectTimeoutMs = options.connectTimeoutMs;
  }

  get listening(): boolean {
    return this.#listening;
  }

  start(handlers: ChangeHandlers): void {
    if (this.#handlers) throw new Error('The change listener is already started');
    this.#handlers = handlers;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    const handlers = this.#handlers;
    if (this.#closed || !handlers) return;
    const client = new pg.Client({
      connectionString: this.#url,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
    });
    this.#client = client;
    client.on('notification', (message) => {
      if (message.channel === CHANGES_CHANNEL) handlers.notification(message.payload ?? '');
    });
    // Once per lost connection: 'error' and 'end' both come when the server goes away.
    let lost = false;
    let check: NodeJS.Timeout | undefined;
    const reconnect = (error?: unknown) => {
      if (lost) return;
      lost = true;
      clearInterval(check);
      const wasListening = this.#listening;
      this.#listening = false;
      this.#client = undefined;
      client.end().catch(() => {});
      if (this.#closed) return;
      if (wasListening)
        this.#logger.warn({ err: error }, 'Lost the connection listening for changes; reconnecting');
      const delay = Math.round(this.#retryMs * (0.5 + Math.random() / 2));
      this.#retryMs = Math.min(this.#retryMs * 2, LAST_RETRY_MS);
      this.#retry = setTimeout(() => void this.#connect(), delay);
    };
    client.on('error', reconnect);
    client.on('end', () => reconnect());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
      await this.#provenHearing(client);
    } catch (error) {
      if (error instanceof DeafListenerError && !this.#deaf) {
        this.#deaf = true;
        this.#logger.error({ err: error }, 'Not listening for changes: live updates are unavailable');
      }
      reconnect(error);
      return;
    }
    if (this.#closed || lost) return;
    this.#deaf = false;
    this.#listening = true;
    this.#retryMs = FIRST_RETRY_MS;
    check = setInterval(() => {
      client.query('SELECT 1').catch(reconnect);
    }, CHECK_INTERVAL_MS);
    check.unref();
    this.#logger.debug('Listening for changes to metrics');
    handlers.listening();
  }

  /**
   * Resolves once `client` has heard a notification that another connection sent to a channel
   * only it listens on; fails with DeafListenerError when none came within the connect timeout of
   * its sending (a slow connection of the sender's is not the listener's deafness).
   */
  async #provenHearing(client: pg.Client): Promise<void> {
    const channel = `metrics_api_listener_check_${randomBytes(8).toString('hex')}`;
    await client.query(`LISTEN ${channel}`);
    let heardIt: () => void = () => {};
    const heard = new Promise<void>((resolve) => {
      heardIt = resolve;
    });
    const onNotification = (message: pg.Notification) => {
      if (message.channel === channel) heardIt();
    };
    client.on('notification', onNotification);
    let timer: NodeJS.Timeout | undefined;
    try {
      const notifier = new pg.Client({
        connectionString: this.#url,
        connectionTimeoutMillis: this.#connectTimeoutMs,
        application_name: LISTENER_CHECK_APPLICATION_NAME,
      });
      notifier.on('error', () => {});
      try {
        await notifier.connect();
        await notifier.query('SELECT pg_notify($1, $2)', [channel, 'check']);
      } finally {
        await notifier.end().catch(() => {});
      }
      await Promise.race([
        heard,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new DeafListenerError(this.#connectTimeoutMs)),
            this.#connectTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      client.off('notification', onNotification);
    }
    await client.query(`UNLISTEN ${channel}`);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listening = false;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}

/**
 * The embedded database's listener. PGlite is one PostgreSQL session behind every socket
 * connection, so one `LISTEN` makes that session listen, and each notification goes back on
 * whichever connection is talking when it is sent: the embedded database hands every one here
 * (startEmbeddedDatabase's onNotification), whether a writer of this process or a command
 * writing through the socket made it.
 */
export class EmbeddedChangeListener implements ChangeListener {
  readonly #listen: () => Promise<unknown>;
  #handlers: ChangeHandlers | undefined;
  #listening = false;

  /** `listen` runs `LISTEN` on the embedded session. */
  constructor(listen: (statement: string) => Promise<unknown>) {
    this.#listen = () => listen(`LISTEN ${CHANGES_CHANNEL}`);
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** For the embedded database: every notification its session sends, on any connection. */
  readonly relay = (message: pg.Notification): void => {
    if (this.#listening && message.channel === CHANGES_CHANNEL)
      this.#handlers?.notification(message.payload ?? '');
  };

  start(handlers: ChangeHandlers): void {
    if (this.#handlers) throw new Error('The change listener is already started');
    this.#handlers = handlers;
    void this.#listen().then(() => {
      this.#listening = true;
      handlers.listening();
    });
  }

  async close(): Promise<void> {
    this.#listening = false;
  }
}
