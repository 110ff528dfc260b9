/** The `errorType` values of Prometheus' HTTP API that evaluation can produce. */
export type PromQLErrorType = 'bad_data' | 'execution' | 'timeout' | 'canceled' | 'internal';

export class PromQLError extends Error {
  readonly type: PromQLErrorType;

  constructor(type: PromQLErrorType, message: string) {
    super(message);
    this.name = 'PromQLError';
    this.type = type;
  }
}

/** A parse error worded as Prometheus words it: "<line>:<column>: parse error: <message>". */
export function parseError(query: string, position: number, message: string): PromQLError {
  let line = 1;
  let lastLineBreak = -1;
  for (let i = 0; i < position && i < query.length; i++) {
    if (query[i] === '\n') {
      line++;
      lastLineBreak = i;
    }
  }
  return new PromQLError('bad_data', `${line}:${position - lastLineBreak}: parse error: ${message}`);
}

/** Valid PromQL this service deliberately does not evaluate. */
export function unsupported(construct: string): PromQLError {
  return new PromQLError('bad_data', `unsupported in this service: ${construct}`);
}

/** Prometheus' error when a result would hold two series with the same labels (e.g. after dropping __name__). */
export function duplicateLabelsetError(): PromQLError {
  return new PromQLError('execution', 'vector cannot contain metrics with the same labelset');
}
