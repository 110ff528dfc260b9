import { Kind } from 'graphql';
import { parseDurationSeconds } from '../../domain/duration.js';
import { describe } from '../../domain/time.js';
import { builder } from '../builder.js';
import { ScalarInputError } from '../errors.js';

function parseDuration(value: unknown): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === undefined) {
    throw new ScalarInputError(
      `${describe(value)} is not a Duration: use a positive whole number of seconds or units s, m, h, d, w such as "1m", "15m", "1h30m"`,
    );
  }
  return seconds;
}

builder.scalarType('Duration', {
  description:
    'A positive length of time in whole seconds. Input: a number of seconds, or a string such as "30s", "1m", "15m", "1h", "1h30m", "1d". Output: seconds.',
  serialize: (value) => value,
  parseValue: parseDuration,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT)
      return parseDuration(ast.kind === Kind.INT ? Number(ast.value) : ast.value);
    throw new ScalarInputError('not a Duration: must be a number of seconds or a string such as "15m"');
  },
});
