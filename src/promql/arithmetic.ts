// Binary operators on two floats, with Go's math semantics where JS differs.
import type { ArithmeticOp, ComparisonOp } from './ast.js';

/** Go's math.Pow: unlike JS, 1^y is 1 for every y and (-1)^±Inf is 1. */
function goPow(base: number, exponent: number): number {
  if (base === 1) return 1;
  if (base === -1 && !Number.isFinite(exponent) && !Number.isNaN(exponent)) return 1;
  return base ** exponent;
}

export function arithmetic(op: ArithmeticOp, lhs: number, rhs: number): number {
  switch (op) {
    case '+':
      return lhs + rhs;
    case '-':
      return lhs - rhs;
    case '*':
      return lhs * rhs;
    case '/':
      return lhs / rhs;
    case '%':
      // JS % is fmod like Go's math.Mod: the result takes the sign of the dividend.
      return lhs % rhs;
    case '^':
      return goPow(lhs, rhs);
  }
}

export function compare(op: ComparisonOp, lhs: number, rhs: number): boolean {
  switch (op) {
    case '==':
      return lhs === rhs;
    case '!=':
      return lhs !== rhs;
    case '>':
      return lhs > rhs;
    case '<':
      return lhs < rhs;
    case '>=':
      return lhs >= rhs;
    case '<=':
      return lhs <= rhs;
  }
}
