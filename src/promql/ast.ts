import type { Matcher } from './matchers.js';

export type ValueType = 'scalar' | 'vector' | 'matrix' | 'string';

export type AggregationOp = 'sum' | 'avg' | 'min' | 'max' | 'count' | 'topk' | 'bottomk' | 'quantile';
export type RangeFunctionName =
  | 'min_over_time'
  | 'max_over_time'
  | 'avg_over_time'
  | 'sum_over_time'
  | 'count_over_time'
  | 'quantile_over_time'
  | 'last_over_time';
export type InstantFunctionName = 'vector' | 'scalar' | 'time';
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%' | '^';
export type ComparisonOp = '==' | '!=' | '>' | '<' | '>=' | '<=';

export interface NumberLiteral {
  kind: 'number';
  value: number;
}

export interface StringLiteral {
  kind: 'string';
  value: string;
}

export interface VectorSelector {
  kind: 'vectorSelector';
  /** Includes the metric name as a `__name__` matcher when written as `name{...}`. */
  matchers: Matcher[];
  /** `offset`: positive looks into the past. */
  offsetMs: number;
}

export interface MatrixSelector {
  kind: 'matrixSelector';
  selector: VectorSelector;
  rangeMs: number;
}

export interface RangeFunctionCall {
  kind: 'rangeFunction';
  func: RangeFunctionName;
  /** The scalar φ of quantile_over_time. */
  param: Expr | undefined;
  range: MatrixSelector;
}

export interface InstantFunctionCall {
  kind: 'instantFunction';
  func: InstantFunctionName;
  args: Expr[];
}

export interface Grouping {
  /** `by` with no labels is what an aggregation without a clause means. */
  mode: 'by' | 'without';
  labels: string[];
}

export interface Aggregation {
  kind: 'aggregation';
  op: AggregationOp;
  /** k of topk/bottomk, φ of quantile. */
  param: Expr | undefined;
  expr: Expr;
  grouping: Grouping;
}

export interface BinaryOperation {
  kind: 'binary';
  op: ArithmeticOp | ComparisonOp;
  lhs: Expr;
  rhs: Expr;
  /** The `bool` modifier of a comparison. */
  returnBool: boolean;
}

export interface UnaryOperation {
  kind: 'unary';
  op: '-' | '+';
  expr: Expr;
}

export type Expr =
  | NumberLiteral
  | StringLiteral
  | VectorSelector
  | MatrixSelector
  | RangeFunctionCall
  | InstantFunctionCall
  | Aggregation
  | BinaryOperation
  | UnaryOperation;

const INSTANT_FUNCTION_TYPES: Record<InstantFunctionName, ValueType> = {
  vector: 'vector',
  scalar: 'scalar',
  time: 'scalar',
};

export function typeOf(expr: Expr): ValueType {
  switch (expr.kind) {
    case 'number':
      return 'scalar';
    case 'string':
      return 'string';
    case 'vectorSelector':
    case 'rangeFunction':
    case 'aggregation':
      return 'vector';
    case 'matrixSelector':
      return 'matrix';
    case 'instantFunction':
      return INSTANT_FUNCTION_TYPES[expr.func];
    case 'binary':
      return typeOf(expr.lhs) === 'scalar' && typeOf(expr.rhs) === 'scalar' ? 'scalar' : 'vector';
    case 'unary':
      return typeOf(expr.expr);
  }
}

/** How Prometheus names a value type in its error messages. */
export function describeType(type: ValueType): string {
  switch (type) {
    case 'scalar':
      return 'scalar';
    case 'string':
      return 'string';
    case 'vector':
      return 'instant vector';
    case 'matrix':
      return 'range vector';
  }
}

export function isComparison(op: BinaryOperation['op']): op is ComparisonOp {
  return op === '==' || op === '!=' || op === '>' || op === '<' || op === '>=' || op === '<=';
}
