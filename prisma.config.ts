import { fileURLToPath } from 'node:url';
import { defineConfig } from 'prisma/config';
import { loadEnv } from './src/config.js';

// The same `.env` as the service's entry points read (DOTENV_CONFIG_PATH names another).
loadEnv();

// Prisma's CLI downloads a native schema engine on first use. Where the user has not chosen an
// engine, use the WebAssembly build of the same engine that ships with our dependencies, so
// `prisma generate` and `prisma migrate` also work offline.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(
  new URL('./tools/schema-engine-wasm.mjs', import.meta.url),
);

export default defineConfig({
  schema: 'prisma/schema.prisma',
  // `prisma db seed` (and `npm run db:seed`) loads the bundled sample data.
  migrations: { path: 'prisma/migrations', seed: 'node --import tsx scripts/seed.ts' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/metrics',
  },
});
