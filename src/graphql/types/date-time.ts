import { Kind } from 'graphql';
import { isoTimestamp, parseTimestamp } from '../../domain/time.js';
import { builder } from '../builder.js';
import { ScalarInputError } from '../errors.js';

function parseDateTime(value: unknown): Date {
  // The same rules as for ingested timestamps: a string must be ISO-8601 with an offset.
  const parsed = parseTimestamp(value, false);
  if ('error' in parsed) throw new ScalarInputError(`not a DateTime: ${parsed.error}`);
  return new Date(parsed.ms);
}

builder.scalarType('DateTime', {
  description:
    'A point in time. Output: ISO-8601 in UTC with milliseconds, e.g. "2026-11-26T12:00:00.000Z". ' +
    'Input: an ISO-8601 string with an offset, or Unix epoch seconds as a number (fractions allowed).',
  serialize: isoTimestamp,
  parseValue: parseDateTime,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING) return parseDateTime(ast.value);
    if (ast.kind === Kind.INT || ast.kind === Kind.FLOAT) return parseDateTime(Number(ast.value));
    throw new ScalarInputError('not a DateTime: must be epoch seconds or an ISO-8601 string');
  },
});
