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

/** pg lets `connectionString` override `database`, so every connection gets explicit fields. */
function pgConfigFromUrl(url, database) {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  const sslmode = parsed.searchParams.get('sslmode');
  return {
    config: {
      host: decodeURIComponent(parsed.hostname) || parsed.searchParams.get('host') || 'localhost',
      port: parsed.port ? Number(parsed.port) : 5432,
      user: decodeURIComponent(parsed.username) || process.env.PGUSER || 'postgres',
      password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
      database: database ?? (decodeURIComponent(parsed.pathname.slice(1)) || 'postgres'),
      ssl: sslmode && sslmode !== 'disable' ? { rejectUnauthorized: sslmode === 'verify-full' } : undefined,
      max: 2,
    },
    schema,
  };
}

/** Works around adapter-pg behaviour that is fine for Prisma Client but not for migrations. */
function patchAdapter(adapter) {
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
  // adapter-pg splits scripts on ';', which breaks `$$` bodies and string literals.
  adapter.executeScript = async (script) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      adapter.onError(error);
    }
  };
  return adapter;
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
    return patchAdapter(await new PrismaPg(config, { schema }).connect());
  }

  async connectToShadowDb() {
    if (this.shadowDatabaseUrl) {
      const { config, schema } = pgConfigFromUrl(this.shadowDatabaseUrl);
      return patchAdapter(await new PrismaPg(config, { schema }).connect());
    }
    const { config } = pgConfigFromUrl(this.url);
    const admin = new pg.Client({ ...config, max: undefined });
    await admin.connect();
    const database = `prisma_migrate_shadow_db_${randomUUID()}`;
    await admin.query(`CREATE DATABASE "${database}"`);
    process.stderr.write(`DBG created ${database}\n`);
    const adapter = patchAdapter(await new PrismaPg({ ...config, database }).connect());
    const dispose = adapter.dispose.bind(adapter);
    // Postgres refuses to drop a database with open connections: close the pool first.
    adapter.dispose = async () => {
      await dispose();
      process.stderr.write(`DBG dropping ${database}\n`);
      await admin.query(`DROP DATABASE IF EXISTS "${database}"`);
      process.stderr.write(`DBG dropped ${database}\n`);
      await admin.end();
    };
    return adapter;
  }
}

function logLine(level, message, errorCode) {
  const fields = { message };
  if (errorCode) fields.error_code = errorCode;
  process.stderr.write(
    `${JSON.stringify({ timestamp: new Date().toISOString(), level, fields, target: 'schema_engine::logger' })}\n`,
  );
}

/** Maps an engine or driver failure to the shape the native binary reports. */
function describeError(error) {
  if (lastPanicMessage) {
    const message = lastPanicMessage;
    lastPanicMessage = undefined;
    return { isPanic: true, message };
  }
  const message = error?.message ?? String(error);
  let parsed;
  try {
    parsed = typeof message === 'string' && message.startsWith('{') ? JSON.parse(message) : undefined;
  } catch {}
  return {
    isPanic: Boolean(parsed?.is_panic),
    message: parsed?.message ?? message,
    errorCode: parsed?.error_code ?? error?.error_code ?? error?.code,
    meta: parsed?.meta ?? error?.meta,
  };
}

const adminDatabase = (url) => pgConfigFromUrl(url, 'postgres').config;

async function withAdminClient(url, work) {
  const client = new pg.Client({ ...adminDatabase(url), max: undefined });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

async function createDatabase(url) {
  const { database } = pgConfigFromUrl(url).config;
  await withAdminClient(url, (client) => client.query(`CREATE DATABASE ${quoteIdent(database)}`));
  return database;
}

/** `cli` mode: one connectivity command, errors on stderr, exit code 1 on failure. */
async function runCliCommand(command, datasource) {
  // The CLI skips the first stderr line of this mode, where the binary prints its start-up banner.
  process.stderr.write(
    `${JSON.stringify({ level: 'INFO', fields: { message: 'Starting schema engine CLI (wasm)' }, target: 'schema_engine::logger' })}\n`,
  );
  const { config } = pgConfigFromUrl(datasource.url);
  try {
    if (command === 'can-connect-to-database') {
      const client = new pg.Client({ ...config, max: undefined });
      await client.connect();
      await client.end();
    } else if (command === 'create-database') {
      await createDatabase(datasource.url);
    } else if (command === 'drop-database') {
      await withAdminClient(datasource.url, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteIdent(config.database)} WITH (FORCE)`),
      );
    } else {
      throw new Error(`Unknown cli command: ${command}`);
    }
    process.exit(0);
  } catch (error) {
    const code = error?.code === '3D000' ? 'P1003' : error?.code === 'ECONNREFUSED' ? 'P1001' : 'P1000';
    const message =
      code === 'P1003'
        ? `Database \`${config.database}\` does not exist on the database server at \`${config.host}:${config.port}\`.`
        : code === 'P1001'
          ? `Can't reach database server at \`${config.host}:${config.port}\``
          : (error?.message ?? String(error));
    logLine('ERROR', message, code);
    process.exit(1);
  }
}

async function runRpcServer(args) {
  const glue = await loadEngine();
  const datamodels = args.datamodels.map((file) => [file, readFileSync(file, 'utf8')]);
  const datasource = args.datasource;
  let enginePromise;
  const engine = () => {
    enginePromise ??= glue.SchemaEngine.new(
      { datamodels: datamodels.length > 0 ? datamodels : undefined },
      (line) => {
        if (process.env.PRISMA_SCHEMA_ENGINE_WASM_DEBUG) process.stderr.write(`${line}\n`);
      },
      bindMigrationAwareSqlAdapterFactory(new MigrationAdapterFactory(datasource ?? {})),
    );
    return enginePromise;
  };

  const methods = {
    getDatabaseVersion: async (params) => (await engine()).version(params),
    createDatabase: async () => ({ databaseName: await createDatabase(datasource.url) }),
  };

  async function call(method, params) {
    if (methods[method]) return methods[method](params);
    const instance = await engine();
    if (typeof instance[method] !== 'function')
      throw new Error(`Method not supported by the wasm schema engine: ${method}`);
    try {
      return await instance[method](params);
    } catch (error) {
      // After `migrate dev` applies pending migrations, the wasm engine may lose its shadow
      // database factory; a history diagnosis with an explicit opt-in restores it.
      if (
        String(error?.message ?? error).includes('shadow DB must be provided through an external factory') &&
        params?.migrationsList
      ) {
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

  const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  const pending = [];
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
        const { isPanic, message, errorCode, meta } = describeError(error);
        logLine('ERROR', message, errorCode);
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
    pending.push(queue);
  }
  await Promise.all(pending);
  process.exit(0);
}

// A Rust panic surfaces as a WebAssembly trap outside any request: report it like the native
// binary does (the message on stderr, exit code 101).
process.on('uncaughtException', (error) => {
  logLine('ERROR', lastPanicMessage ?? error?.stack ?? String(error));
  process.exit(101);
});

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
