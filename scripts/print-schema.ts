// Writes the GraphQL SDL to schema.graphql (committed; test/schema.test.ts fails when it is stale).
import { writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { sortedSchema } from '../src/graphql/schema.js';

const target = new URL('../schema.graphql', import.meta.url);
writeFileSync(target, `${printSchema(sortedSchema)}\n`);
process.stdout.write(`Wrote ${target.pathname}\n`);
