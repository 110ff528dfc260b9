// package.json's `overrides` install this in place of @prisma/streams-local, which requires Node 22
// and which only `prisma dev` (Prisma's local development server) imports. This project never runs
// `prisma dev`: its embedded database is PGlite, started by `npm start` without DATABASE_URL.
export async function startLocalDurableStreamsServer() {
  throw new Error(
    '`prisma dev` is not available in metrics-api (package.json overrides @prisma/streams-local); ' +
      'run `npm start` without DATABASE_URL for the embedded database',
  );
}
