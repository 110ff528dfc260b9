import { Kind } from 'graphql';
import { parseDurationSeconds } from '../../domain/duration.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';

function parseDuration(value: unknown): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === undefined) {
    throw badUserInput(
      'Duration',
      `${JSON.stringify(value)} is not a duration: use a positive whole number of seconds or units s, m, h, d, w such as "1m", "15m", "1h30m"`,
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
    throw badUserInput('Duration', 'must be a number of seconds or a string such as "15m"');
  },
});
