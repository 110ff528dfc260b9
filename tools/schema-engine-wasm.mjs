#!/usr/bin/env node
// A drop-in replacement for Prisma's native `schema-engine` binary, built on the same Rust engine
// compiled to WebAssembly (@prisma/schema-engine-wasm) and talking to PostgreSQL through
// @prisma/adapter-pg. The Prisma CLI downloads the native binary on first use; machines without
// internet cannot, so prisma.config.ts points PRISMA_SCHEMA_ENGINE_BINARY here instead.
//
// It speaks the binary's protocol: the CLI spawns it as
//   schema-engine-wasm.mjs [--datamodels <file>...] [--datasource <json>]
// and exchanges newline-delimited JSON-RPC 2.0 on stdin/stdout, or as
//   schema-engine-wasm.mjs --datasource <json> cli can-connect-to-database|create-database|drop-database
// and reads failures from stderr as JSON log lines.
//
// Set PRISMA_SCHEMA_ENGINE_WASM_DEBUG=1 (and DEBUG="prisma:schemaEngine*" for the CLI to show the
// engine's stderr) to see the engine's logs and this file's own decisions.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from '@prisma/driver-adapter-utils';
import pg from 'pg';

const require = createRequire(import.meta.url);
const ENGINE_PACKAGE = '@prisma/schema-engine-wasm';
const PG_TEXT_OID = 25;
const PG_CHAR_OID = 18;
const DEBUG = Boolean(process.env.PRISMA_SCHEMA_ENGINE_WASM_DEBUG);
// The native engine gives up on an unreachable server after 5 s (libpq's connect_timeout).
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 5;

/** An error with a Prisma error code, reported to the CLI the way the native engine reports it. */
class EngineError extends Error {
  constructor(code, message, meta) {
    super(message);
    this.errorCode = code;
    this.meta = meta;
  }
}

/** One JSON log line on stderr, in the shape the CLI parses from the native binary. */
function logLine(level, message, extraFields = {}) {
  const fields = { message, ...extraFields };
  process.stderr.write(
    `${JSON.stringify({ timestamp: new Date().toISOString(), level, fields, target: 'schema_engine::logger' })}\n`,
  );
}

const debug = (message, fields) => {
  if (DEBUG) logLine('DEBUG', `[wasm shim] ${message}`, fields);
};

function parseArgs(argv) {
  const args = { datamodels: [], datasource: undefined, cliCommand: undefined, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--datamodels') {
      while (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') && argv[i + 1] !== 'cli') {
        args.datamodels.push(argv[++i]);
      }
    } else if (arg === '--datasource') {
      args.datasource = JSON.parse(argv[++i]);
    } else if (arg === '--enabled-preview-features' || arg === '--extension-types') {
      i++;
    } else if (arg === 'cli') {
      args.cliCommand = argv[++i];
    } else if (arg === '--version' || arg === '-V') {
      args.version = true;
    }
  }
  return args;
}

async function loadEngine() {
  const packageDir = dirname(require.resolve(ENGINE_PACKAGE));
  const glue = await import(`${ENGINE_PACKAGE}/schema_engine_bg`);
  // Node 20 cannot `import` a .wasm module, so the wasm-bindgen glue is wired up by hand.
  const bytes = readFileSync(join(packageDir, 'schema_engine_bg.wasm'));
  const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return glue;
}

// The engine reports Rust panics through this registry before the promise rejects.
let lastPanicMessage;
globalThis.PRISMA_WASM_PANIC_REGISTRY = {
  set_message(message) {
    lastPanicMessage = message;
  },
};

const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

/**
 * Connection settings for a postgres:// URL. pg lets a `connectionString` override `database`,
 * so every connection here is built from explicit fields.
 */
function pgConfigFromUrl(url, database) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new EngineError(
      'P1013',
      `The provided database string is invalid. ${url ? 'It is not a valid URL' : 'The datasource has no url: set `datasource.url` in prisma.config.ts'}.`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new EngineError(
      'P1013',
      `The provided database string is invalid. This engine only supports postgres:// and postgresql:// URLs, not \`${parsed.protocol}\`.`,
    );
  }
  const params = parsed.searchParams;
  const schema = params.get('schema') || undefined;
  const sslmode = params.get('sslmode');
  const connectTimeout = Number(params.get('connect_timeout') ?? DEFAULT_CONNECT_TIMEOUT_SECONDS);
  return {
    config: {
      // `?host=` names a Unix socket directory or a host, as in libpq; URL.hostname keeps IPv6 brackets.
      host:
        params.get('host') || decodeURIComponent(parsed.hostname).replace(/^\[(.*)\]$/, '$1') || 'localhost',
      port: parsed.port ? Number(parsed.port) : 5432,
      user: decodeURIComponent(parsed.username) || process.env.PGUSER || 'postgres',
      password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
      database: database ?? (decodeURIComponent(parsed.pathname.slice(1)) || 'postgres'),
      ssl:
        sslmode && sslmode !== 'disable'
          ? {
              rejectUnauthorized:
                (sslmode === 'verify-full' || sslmode === 'verify-ca') &&
                params.get('sslaccept') !== 'accept_invalid_certs',
            }
          : undefined,
      connectionTimeoutMillis:
        Number.isFinite(connectTimeout) && connectTimeout > 0 ? connectTimeout * 1000 : 0,
      // The native engine works in `?schema=`: unqualified names in migration scripts must land
      // there too, not in `public`.
      options: schema ? `-c search_path=${quoteIdent(schema).replaceAll(' ', '\\ ')}` : undefined,
      max: 2,
    },
    schema,
  };
}

const hostAndPort = (config) =>
  `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;

/** Node's network errors, and pg's own connection failures, mean "can't reach the server". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
]);
const isUnreachable = (error) =>
  UNREACHABLE_CODES.has(error?.code) ||
  /^(Connection terminated (unexpectedly|due to connection timeout)|timeout expired)/.test(
    error?.message ?? '',
  );

/** Maps a pg connection failure to the error the native engine reports for it. */
function connectionError(error, config) {
  if (error instanceof EngineError) return error;
  if (isUnreachable(error)) {
    return new EngineError(
      'P1001',
      `Can't reach database server at \`${hostAndPort(config)}\`\n\nPlease make sure your database server is running at \`${hostAndPort(config)}\`.`,
    );
  }
  switch (error?.code) {
    case '3D000':
      return new EngineError(
        'P1003',
        `Database \`${config.database}\` does not exist on the database server at \`${hostAndPort(config)}\`.`,
      );
    case '28P01':
      return new EngineError(
        'P1000',
        `Authentication failed against database server at \`${config.host}\`, the provided database credentials for \`${config.user}\` are not valid.\n\nPlease make sure to provide valid database credentials for the database server at \`${config.host}\`.`,
      );
    case '42P04':
      return new EngineError(
        'P1009',
        `Database \`${config.database}\` already exists on the database server at \`${hostAndPort(config)}\``,
      );
    default:
      return new EngineError('P1000', error?.message ?? String(error));
  }
}

/** Runs `work` with a client on the server's `postgres` maintenance database; errors name `url`'s. */
async function withAdminClient(url, work) {
  const { config: target } = pgConfigFromUrl(url);
  const client = new pg.Client({ ...target, database: 'postgres', options: undefined });
  try {
    await client.connect();
    return await work(client);
  } catch (error) {
    throw connectionError(error, target);
  } finally {
    await client.end().catch(() => {});
  }
}

// The migration the engine is applying (from its logs), and the database error of the last
// migration script that failed on the main database: together they make the native P3018 error.
let applyingMigration;
let failedScriptError;

/** Works around adapter-pg behaviour that is fine for Prisma Client but not for migrations. */
function patchAdapter(adapter, { isShadow }) {
  // Catalog queries return Postgres' internal "char" type (OID 18), which adapter-pg cannot
  // decode; the engine reads those columns as Character, so they are typed that way here.
  const patchQueryable = (queryable) => {
    const charColumnsByRows = new WeakMap();
    const performIO = queryable.performIO.bind(queryable);
    queryable.performIO = async (query) => {
      const result = await performIO(query);
      const charColumns = [];
      result.fields.forEach((field, index) => {
        if (field.dataTypeID === PG_CHAR_OID) {
          field.dataTypeID = PG_TEXT_OID;
          charColumns.push(index);
        }
      });
      if (charColumns.length > 0) charColumnsByRows.set(result.rows, charColumns);
      return result;
    };
    const queryRaw = queryable.queryRaw.bind(queryable);
    queryable.queryRaw = async (query) => {
      const result = await queryRaw(query);
      for (const index of charColumnsByRows.get(result.rows) ?? []) {
        result.columnTypes[index] = ColumnTypeEnum.Character;
      }
      return result;
    };
    return queryable;
  };
  patchQueryable(adapter);
  const startTransaction = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (...args) => patchQueryable(await startTransaction(...args));
  // adapter-pg splits scripts on ';', which breaks `$$` bodies and string literals. The native
  // engine sends a migration as one simple-protocol query (one implicit transaction): so does this.
  adapter.executeScript = async (script) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      if (!isShadow) failedScriptError = error;
      adapter.onError(error);
    }
  };
  return adapter;
}

// Shadow databases this process has created and not dropped yet. They are dropped on the way out
// too, in case the engine never disposes of them (a failed command, or the CLI killing this
// process); an exit in the middle of a drop waits for it.
const shadowDatabases = new Map(); // name -> { url, dropping: Promise | undefined }

function dropShadowDatabase(database) {
  const entry = shadowDatabases.get(database);
  if (!entry) return Promise.resolve();
  entry.dropping ??= withAdminClient(entry.url, async (client) => {
    // Connections left open by an interrupted command would make DROP DATABASE fail.
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)}`);
  }).then(
    () => {
      shadowDatabases.delete(database);
      debug(`Dropped shadow database ${database}`);
    },
    (error) => {
      entry.dropping = undefined; // so that the exit path tries again
      throw error;
    },
  );
  return entry.dropping;
}

async function dropRemainingShadowDatabases() {
  await Promise.all(
    [...shadowDatabases.keys()].map((database) =>
      dropShadowDatabase(database).catch((error) =>
        logLine('WARN', `Could not drop the shadow database ${database}: ${error.message}`),
      ),
    ),
  );
}

class MigrationAdapterFactory {
  provider = 'postgres';
  adapterName = '@prisma/adapter-pg';

  constructor(datasource) {
    this.url = datasource.url;
    this.shadowDatabaseUrl = datasource.shadowDatabaseUrl;
  }

  async connect() {
    const { config, schema } = pgConfigFromUrl(this.url);
    return patchAdapter(await new PrismaPg(config, { schema }).connect(), { isShadow: false });
  }

  async connectToShadowDb() {
    if (this.shadowDatabaseUrl) {
      const { config, schema } = pgConfigFromUrl(this.shadowDatabaseUrl);
      return patchAdapter(await new PrismaPg(config, { schema }).connect(), { isShadow: true });
    }
    // adapter-pg's own version reuses the main database (see pgConfigFromUrl) and drops the shadow
    // database before closing its pool, which Postgres refuses: hence this one.
    const { config, schema } = pgConfigFromUrl(this.url);
    const database = `prisma_migrate_shadow_db_${randomUUID()}`;
    shadowDatabases.set(database, { url: this.url, dropping: undefined });
    try {
      await withAdminClient(this.url, (client) => client.query(`CREATE DATABASE ${quoteIdent(database)}`));
    } catch (error) {
      shadowDatabases.delete(database);
      throw new EngineError(
        'P3014',
        `Prisma Migrate could not create the shadow database. Please make sure the database user has permission to create databases. Read more about the shadow database (and workarounds) at https://pris.ly/d/migrate-shadow\n\nOriginal error: ${error.message}`,
      );
    }
    debug(`Created shadow database ${database}`);
    const shadowConfig = { ...config, database };
    const client = new pg.Client({ ...shadowConfig, options: undefined });
    try {
      await client.connect();
      // A server that ignores the database a client asks for (PGlite serves its one database to
      // every connection) would have the engine apply migrations to the main database instead.
      const { rows } = await client.query('SELECT current_database() AS name');
      if (rows[0]?.name !== database) {
        throw new EngineError(
          'P3014',
          `Prisma Migrate could not create the shadow database. The server at \`${hostAndPort(config)}\` accepted \`CREATE DATABASE ${database}\`, but connections to it reach \`${rows[0]?.name}\`, so it cannot host one: is it the embedded PGlite server? Run this command against PostgreSQL, or set \`datasource.shadowDatabaseUrl\` in prisma.config.ts. Read more about the shadow database at https://pris.ly/d/migrate-shadow`,
        );
      }
      // The engine expects the schema to exist, as it does in the main database.
      if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    } finally {
      await client.end().catch(() => {});
    }
    const adapter = patchAdapter(await new PrismaPg(shadowConfig, { schema }).connect(), { isShadow: true });
    const dispose = adapter.dispose.bind(adapter);
    // Postgres refuses to drop a database with open connections: close the pool first.
    adapter.dispose = async () => {
      await dispose();
      await dropShadowDatabase(database);
    };
    return adapter;
  }
}

/** The message of an engine error, with the JS errors it refers to ("External error id#N") resolved. */
function resolveExternalErrors(message, errorRegistry) {
  let resolved;
  const text = message.replace(/External error id#(\d+)/g, (match, id) => {
    const error = errorRegistry?.consumeError(Number(id))?.error;
    if (!error) return match;
    resolved ??= error;
    return error.message ?? String(error);
  });
  return { text, resolved };
}

// The wasm engine reports these connection errors without the code the native engine gives them.
const CODES_BY_MESSAGE = [
  [/^Can't reach database server at /, 'P1001'],
  [/^Authentication failed against database server/, 'P1000'],
  [/^Database `.*` does not exist/, 'P1003'],
  [/^User was denied access on the database/, 'P1010'],
];

/** Maps an engine or driver failure to the shape the native binary reports. */
function describeError(error, errorRegistry) {
  if (lastPanicMessage) {
    const message = lastPanicMessage;
    lastPanicMessage = undefined;
    return { isPanic: true, message };
  }
  if (error instanceof EngineError)
    return { isPanic: false, message: error.message, errorCode: error.errorCode, meta: error.meta };
  const raw = error?.message ?? String(error);
  let parsed;
  try {
    parsed = raw.startsWith('{') ? JSON.parse(raw) : undefined;
  } catch {}
  const { text, resolved } = resolveExternalErrors(parsed?.message ?? raw, errorRegistry);
  if (resolved instanceof EngineError) {
    // The engine may have wrapped it ("Failed to connect to the shadow database\n..."): keep its text.
    return { isPanic: false, message: text, errorCode: resolved.errorCode, meta: resolved.meta };
  }
  return {
    isPanic: Boolean(parsed?.is_panic),
    message: text,
    errorCode:
      parsed?.error_code ??
      (/^P\d{4}$/.test(error?.code) ? error.code : undefined) ??
      CODES_BY_MESSAGE.find(([pattern]) => pattern.test(text))?.[1],
    meta: parsed?.meta ?? error?.meta,
  };
}

/** The native engine's P3018, from the Postgres error of the failed migration script. */
function migrationFailedError(migrationName, dbError) {
  const databaseError = [
    `${dbError.severity ?? 'ERROR'}: ${dbError.message}`,
    dbError.detail && `DETAIL: ${dbError.detail}`,
    dbError.hint && `HINT: ${dbError.hint}`,
    dbError.where && `CONTEXT: ${dbError.where}`,
  ]
    .filter(Boolean)
    .join('\n');
  return new EngineError(
    'P3018',
    `A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\nMigration name: ${migrationName}\n\nDatabase error code: ${dbError.code}\n\nDatabase error:\n${databaseError}\n`,
    { migration_name: migrationName, database_error_code: dbError.code, database_error: databaseError },
  );
}

/** `cli` mode: one connectivity command, errors on stderr, exit code 1 on failure. */
async function runCliCommand(command, datasource) {
  // The CLI skips the first stderr line of this mode, where the binary prints its start-up banner.
  logLine('INFO', 'Starting schema engine CLI (wasm)');
  try {
    const { config } = pgConfigFromUrl(datasource.url);
    if (command === 'can-connect-to-database') {
      const client = new pg.Client(config);
      try {
        await client.connect();
      } catch (error) {
        throw connectionError(error, config);
      } finally {
        await client.end().catch(() => {});
      }
    } else if (command === 'create-database') {
      await withAdminClient(datasource.url, (client) =>
        client.query(`CREATE DATABASE ${quoteIdent(config.database)}`),
      );
    } else if (command === 'drop-database') {
      await withAdminClient(datasource.url, async (client) => {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
          config.database,
        ]);
        await client.query(`DROP DATABASE ${quoteIdent(config.database)}`);
      });
    } else {
      throw new Error(`Unknown cli command: ${command}`);
    }
    process.exit(0);
  } catch (error) {
    const { message, errorCode } = describeError(error);
    logLine('ERROR', message, errorCode ? { error_code: errorCode } : {});
    process.exit(1);
  }
}

async function runRpcServer(args) {
  const glue = await loadEngine();
  const datamodels = args.datamodels.map((file) => [file, readFileSync(file, 'utf8')]);
  const datasource = args.datasource ?? {};
  // Keeps the bound factory: its registry holds the JS errors the engine only refers to by id.
  const adapterFactory = bindMigrationAwareSqlAdapterFactory(new MigrationAdapterFactory(datasource));

  const onEngineLog = (line) => {
    const text = line.replace(/\n$/, '');
    if (DEBUG) process.stderr.write(`${text}\n`);
    if (text.includes('"Applying `')) {
      try {
        const entry = JSON.parse(text);
        if (entry.fields?.message?.startsWith('Applying `')) applyingMigration = entry.span?.migration_name;
      } catch {}
    }
  };
  let enginePromise;
  const engine = () => {
    enginePromise ??= glue.SchemaEngine.new(
      { datamodels: datamodels.length > 0 ? datamodels : undefined },
      onEngineLog,
      adapterFactory,
    );
    return enginePromise;
  };

  const methods = {
    getDatabaseVersion: async (params) => (await engine()).version(params),
    createDatabase: async () => {
      const { config } = pgConfigFromUrl(datasource.url);
      await withAdminClient(datasource.url, (client) =>
        client.query(`CREATE DATABASE ${quoteIdent(config.database)}`),
      );
      return { databaseName: config.database };
    },
  };

  async function callEngine(method, params) {
    const instance = await engine();
    if (typeof instance[method] !== 'function')
      throw new Error(`Method not supported by the wasm schema engine: ${method}`);
    try {
      return await instance[method](params);
    } catch (error) {
      // evaluateDataLoss and createMigration get no shadow database factory in the wasm engine:
      // they rely on a schema cached by an earlier devDiagnostic, and fail with this message when
      // `migrate dev` has applied migrations since. A history diagnosis with an explicit opt-in
      // recomputes that schema (with a shadow database), after which the retry succeeds.
      if (
        String(error?.message ?? error).includes('shadow DB must be provided through an external factory') &&
        params?.migrationsList
      ) {
        debug(`${method} needs a shadow database: diagnosing the migration history, then retrying`);
        await instance.diagnoseMigrationHistory({
          migrationsList: params.migrationsList,
          optInToShadowDatabase: true,
          filters: params.filters ?? { externalTables: [], externalEnums: [] },
        });
        return instance[method](params);
      }
      throw error;
    }
  }

  async function call(method, params) {
    applyingMigration = undefined;
    failedScriptError = undefined;
    try {
      return await (methods[method] ? methods[method](params) : callEngine(method, params));
    } catch (error) {
      if (method === 'applyMigrations' && applyingMigration && failedScriptError?.severity) {
        throw migrationFailedError(applyingMigration, failedScriptError);
      }
      throw error;
    }
  }

  const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let queue = Promise.resolve();
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.method === undefined) continue; // an answer to a `print` notification
    // The binary answers requests one at a time; so does this.
    queue = queue.then(async () => {
      try {
        let result = await call(request.method, request.params);
        if (request.method === 'diff' && result && typeof result.stdout === 'string') {
          // The native binary sends the script as a `print` notification and leaves stdout null.
          send({
            jsonrpc: '2.0',
            method: 'print',
            id: `print-${request.id}`,
            params: { content: result.stdout.replace(/\n$/, '') },
          });
          result = { ...result, stdout: null };
        }
        send({ jsonrpc: '2.0', id: request.id, result: result ?? {} });
      } catch (error) {
        const { isPanic, message, errorCode, meta } = describeError(error, adapterFactory.errorRegistry);
        logLine('ERROR', message, errorCode ? { error_code: errorCode } : {});
        send({
          jsonrpc: '2.0',
          id: request.id,
          error: {
            code: 4466,
            message: 'An error happened. Check the data field for details.',
            data: { is_panic: isPanic, message, meta, error_code: errorCode },
          },
        });
      }
    });
  }
  await queue;
  await dropRemainingShadowDatabases();
  process.exit(0);
}

// A Rust panic surfaces as a WebAssembly trap outside any request: report it like the native
// binary does (the message on stderr, exit code 101).
process.on('uncaughtException', async (error) => {
  logLine('ERROR', lastPanicMessage ?? error?.stack ?? String(error));
  await dropRemainingShadowDatabases();
  process.exit(101);
});
// The CLI ends stdin and, on POSIX, kills this process straight away when it is done with it,
// whether or not a command is still running. Exiting with the usual 128 + signal number keeps a
// CLI still waiting for an answer from hanging, as if the process had simply been killed.
for (const [signal, number] of [
  ['SIGHUP', 1],
  ['SIGINT', 2],
  ['SIGTERM', 15],
]) {
  process.on(signal, async () => {
    await dropRemainingShadowDatabases();
    process.exit(128 + number);
  });
}

const args = parseArgs(process.argv.slice(2));
if (args.version) {
  const { version } = JSON.parse(
    readFileSync(join(dirname(require.resolve(ENGINE_PACKAGE)), 'package.json'), 'utf8'),
  );
  process.stdout.write(`schema-engine-cli ${version.split('.').at(-1)} (wasm)\n`);
} else if (args.cliCommand) {
  await runCliCommand(args.cliCommand, args.datasource ?? {});
} else {
  await runRpcServer(args);
}
