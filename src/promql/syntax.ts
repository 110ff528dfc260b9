// The lezer PromQL tree -> the typed AST of the subset this service evaluates. The grammar is the
// one the Prometheus UI ships (it also accepts 3.x syntax); anything outside the subset is refused
// here, with Prometheus 2.42's wording for errors Prometheus itself would report.
import type { SyntaxNode } from '@lezer/common';
import * as terms from '@prometheus-io/lezer-promql';
import { parser } from '@prometheus-io/lezer-promql';
import {
  type AggregationOp,
  type BinaryOperation,
  describeType,
  type Expr,
  type Grouping,
  type InstantFunctionName,
  isComparison,
  type MatrixSelector,
  type RangeFunctionName,
  typeOf,
  type ValueType,
  type VectorSelector,
} from './ast.js';
import { type PromQLError, parseError, unsupported } from './errors.js';
import { parseDuration, parseNumber, unquoteString } from './literals.js';
import { type Matcher, type MatchOperator, valueTest } from './matchers.js';

const RANGE_FUNCTION_NAMES: readonly RangeFunctionName[] = [
  'min_over_time',
  'max_over_time',
  'avg_over_time',
  'sum_over_time',
  'count_over_time',
  'quantile_over_time',
  'last_over_time',
];
const INSTANT_FUNCTIONS: Record<InstantFunctionName, readonly ValueType[]> = {
  vector: ['scalar'],
  scalar: ['vector'],
  time: [],
};
const AGGREGATIONS: readonly AggregationOp[] = [
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'topk',
  'bottomk',
  'quantile',
];
const PARAMETRIC_AGGREGATIONS: readonly AggregationOp[] = ['topk', 'bottomk', 'quantile'];

const BINARY_OPERATORS = new Map<number, BinaryOperation['op']>([
  [terms.Add, '+'],
  [terms.Sub, '-'],
  [terms.Mul, '*'],
  [terms.Div, '/'],
  [terms.Mod, '%'],
  [terms.Pow, '^'],
  [terms.Eql, '=='],
  [terms.Neq, '!='],
  [terms.Gtr, '>'],
  [terms.Lss, '<'],
  [terms.Gte, '>='],
  [terms.Lte, '<='],
]);
const MATCH_OPERATORS = new Map<number, MatchOperator>([
  [terms.EqlSingle, '='],
  [terms.Neq, '!='],
  [terms.EqlRegex, '=~'],
  [terms.NeqRegex, '!~'],
]);

function childrenOf(node: SyntaxNode): SyntaxNode[] {
  const children: SyntaxNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling) children.push(child);
  return children;
}

/** Parses a PromQL query of the supported subset; throws PromQLError('bad_data') otherwise. */
export function parseQuery(query: string): Expr {
  if (query.trim() === '') throw parseError(query, 0, 'no expression found in input');
  const tree = parser.parse(query);
  reportFirstSyntaxError(query, tree.topNode);
  const [root, ...rest] = childrenOf(tree.topNode);
  if (!root) throw parseError(query, 0, 'no expression found in input');
  if (rest.length > 0) throw parseError(query, rest[0]?.from ?? 0, 'unexpected input after the expression');
  const expr = new Converter(query).expression(root);
  if (typeOf(expr) === 'matrix') {
    throw unsupported('range vector as a query result (use it inside an *_over_time function)');
  }
  return expr;
}

function reportFirstSyntaxError(query: string, top: SyntaxNode): void {
  let error: SyntaxNode | undefined;
  top.toTree().iterate({
    enter(node) {
      if (error) return false;
      if (node.type.isError) error = node.node;
      return undefined;
    },
  });
  if (!error) return;
  // lezer cannot know function names it lacks; "foo(" shows up as a selector followed by an error.
  const previous = error.prevSibling;
  if (query[error.from] === '(' && previous?.type.id === terms.Identifier) {
    throw parseError(
      query,
      previous.from,
      `unknown function with name "${query.slice(previous.from, previous.to)}"`,
    );
  }
  const text = query.slice(error.from, error.to).trim();
  if (text !== '') throw parseError(query, error.from, `unexpected "${text}"`);
  const next = query.slice(error.from).trimStart();
  if (next === '') throw parseError(query, error.from, 'unexpected end of input');
  throw parseError(query, query.length - next.length, `unexpected character "${next[0]}"`);
}

class Converter {
  constructor(private readonly query: string) {}

  private text(node: SyntaxNode): string {
    return this.query.slice(node.from, node.to);
  }

  private error(node: SyntaxNode, message: string): PromQLError {
    return parseError(this.query, node.from, message);
  }

  expression(node: SyntaxNode): Expr {
    switch (node.type.id) {
      case terms.NumberDurationLiteral:
        return { kind: 'number', value: this.number(node) };
      case terms.StringLiteral:
        return { kind: 'string', value: this.string(node) };
      case terms.ParenExpr: {
        const [inner] = childrenOf(node);
        if (!inner) throw this.error(node, 'unexpected "()"');
        return this.expression(inner);
      }
      case terms.VectorSelector:
        return this.vectorSelector(node);
      case terms.MatrixSelector:
        return this.matrixSelector(node);
      case terms.OffsetExpr:
        return this.offset(node);
      case terms.FunctionCall:
        return this.functionCall(node);
      case terms.AggregateExpr:
        return this.aggregation(node);
      case terms.BinaryExpr:
        return this.binary(node);
      case terms.UnaryExpr:
        return this.unary(node);
      case terms.SubqueryExpr:
        throw unsupported('subquery');
      case terms.StepInvariantExpr:
        throw unsupported('@ modifier');
      default:
        throw unsupported(`construct "${this.text(node)}" (${node.name})`);
    }
  }

  private number(node: SyntaxNode): number {
    const token = this.text(node);
    const value = parseNumber(token);
    if (value !== undefined) return value;
    const unsigned = token.replace(/^[-+]/, '');
    if (parseDuration(unsigned) !== undefined) throw this.error(node, `unexpected duration "${token}"`);
    throw this.error(node, `bad number or duration syntax: "${token}"`);
  }

  private string(node: SyntaxNode): string {
    const value = unquoteString(this.text(node));
    if (value === undefined) throw this.error(node, `invalid string literal ${this.text(node)}`);
    return value;
  }

  private duration(node: SyntaxNode, context: string): number {
    const [literal, ...rest] = childrenOf(node);
    if (literal?.type.id !== terms.NumberDurationLiteralInDurationContext || rest.length > 0) {
      throw unsupported(`duration expression "${this.text(node)}"`);
    }
    const token = this.text(literal);
    const ms = parseDuration(token);
    if (ms === undefined)
      throw this.error(literal, `unexpected number "${token}" in ${context}, expected duration`);
    return ms;
  }

  private vectorSelector(node: SyntaxNode): VectorSelector {
    const matchers: Matcher[] = [];
    let metricName: string | undefined;
    for (const child of childrenOf(node)) {
      if (child.type.id === terms.Identifier) metricName = this.text(child);
      else if (child.type.id === terms.LabelMatchers) {
        for (const matcher of childrenOf(child)) matchers.push(this.labelMatcher(matcher));
      } else throw unsupported(`selector part "${this.text(child)}"`);
    }
    if (metricName !== undefined) {
      const named = matchers.find((matcher) => matcher.name === '__name__');
      if (named)
        throw this.error(node, `metric name must not be set twice: "${metricName}" or "${named.value}"`);
      matchers.push({ name: '__name__', operator: '=', value: metricName });
    }
    // Prometheus refuses selectors that would match every series.
    if (matchers.every((matcher) => valueTest(matcher)(''))) {
      throw this.error(node, 'vector selector must contain at least one non-empty matcher');
    }
    return { kind: 'vectorSelector', matchers, offsetMs: 0 };
  }

  private labelMatcher(node: SyntaxNode): Matcher {
    if (node.type.id === terms.QuotedLabelMatcher || node.type.id === terms.QuotedLabelName) {
      throw unsupported(`quoted label name in "${this.text(node)}"`);
    }
    if (node.type.id !== terms.UnquotedLabelMatcher) throw unsupported(`label matcher "${this.text(node)}"`);
    const [name, operator, value] = childrenOf(node);
    const operatorKind = operator?.firstChild?.type.id;
    const matchOperator = operatorKind === undefined ? undefined : MATCH_OPERATORS.get(operatorKind);
    if (!name || !value || !matchOperator) throw this.error(node, `unexpected "${this.text(node)}"`);
    const matcher: Matcher = { name: this.text(name), operator: matchOperator, value: this.string(value) };
    try {
      valueTest(matcher);
    } catch (error) {
      throw this.error(value, (error as Error).message);
    }
    return matcher;
  }

  private matrixSelector(node: SyntaxNode): MatrixSelector {
    const [inner, range] = childrenOf(node);
    if (!inner || !range) throw this.error(node, `unexpected "${this.text(node)}"`);
    if (inner.type.id === terms.OffsetExpr)
      throw this.error(inner, 'no offset modifiers allowed before range');
    if (inner.type.id !== terms.VectorSelector)
      throw this.error(inner, 'ranges only allowed for vector selectors');
    return {
      kind: 'matrixSelector',
      selector: this.vectorSelector(inner),
      rangeMs: this.duration(range, 'range'),
    };
  }

  private offset(node: SyntaxNode): Expr {
    const [inner, , durationNode] = childrenOf(node);
    if (!inner || !durationNode) throw this.error(node, `unexpected "${this.text(node)}"`);
    const offsetMs = this.offsetDuration(durationNode);
    const target = this.expression(inner);
    const selector = target.kind === 'matrixSelector' ? target.selector : target;
    if (selector.kind !== 'vectorSelector') {
      throw this.error(
        node,
        'offset modifier must be preceded by an instant vector selector or range vector selector or a subquery',
      );
    }
    if (selector.offsetMs !== 0) throw this.error(node, 'offset may not be set multiple times');
    selector.offsetMs = offsetMs;
    return target;
  }

  private offsetDuration(node: SyntaxNode): number {
    const [first, second] = childrenOf(node);
    if (first?.type.id === terms.UnaryOp && second?.type.id === terms.OffsetDurationExpr) {
      const magnitude = this.offsetDuration(second);
      return this.text(first) === '-' ? -magnitude : magnitude;
    }
    return this.duration(node, 'offset');
  }

  private functionCall(node: SyntaxNode): Expr {
    const [identifier, body] = childrenOf(node);
    if (!identifier || !body) throw this.error(node, `unexpected "${this.text(node)}"`);
    const name = this.text(identifier);
    const args = childrenOf(body).map((arg) => ({ node: arg, expr: this.expression(arg) }));
    const expectArguments = (count: number): void => {
      if (args.length !== count) {
        throw this.error(node, `expected ${count} argument(s) in call to "${name}", got ${args.length}`);
      }
    };
    const expectType = (index: number, type: ValueType): Expr => {
      const arg = args[index] as (typeof args)[number];
      const actual = typeOf(arg.expr);
      if (actual !== type) {
        throw this.error(
          arg.node,
          `expected type ${describeType(type)} in call to function "${name}", got ${describeType(actual)}`,
        );
      }
      return arg.expr;
    };

    const rangeFunction = RANGE_FUNCTION_NAMES.find((candidate) => candidate === name);
    if (rangeFunction) {
      const hasParam = rangeFunction === 'quantile_over_time';
      expectArguments(hasParam ? 2 : 1);
      const param = hasParam ? expectType(0, 'scalar') : undefined;
      const range = expectType(hasParam ? 1 : 0, 'matrix');
      if (range.kind !== 'matrixSelector') throw unsupported('range vector other than a selector');
      return { kind: 'rangeFunction', func: rangeFunction, param, range };
    }
    if (Object.hasOwn(INSTANT_FUNCTIONS, name)) {
      const func = name as InstantFunctionName;
      const types = INSTANT_FUNCTIONS[func];
      expectArguments(types.length);
      return { kind: 'instantFunction', func, args: types.map((type, i) => expectType(i, type)) };
    }
    throw unsupported(`function "${name}"`);
  }

  private aggregation(node: SyntaxNode): Expr {
    let op: string | undefined;
    let grouping: Grouping = { mode: 'by', labels: [] };
    let body: SyntaxNode | undefined;
    for (const child of childrenOf(node)) {
      if (child.type.id === terms.AggregateOp) op = this.text(child);
      else if (child.type.id === terms.AggregateModifier) grouping = this.grouping(child);
      else if (child.type.id === terms.FunctionCallBody) body = child;
    }
    const aggregationOp = AGGREGATIONS.find((candidate) => candidate === op);
    if (!aggregationOp) throw unsupported(`aggregation "${op}"`);
    if (!body) throw this.error(node, `unexpected "${this.text(node)}"`);
    const args = childrenOf(body);
    const hasParam = PARAMETRIC_AGGREGATIONS.includes(aggregationOp);
    const expected = hasParam ? 2 : 1;
    if (args.length !== expected) {
      throw this.error(
        node,
        `wrong number of arguments for aggregate expression provided, expected ${expected}, got ${args.length}`,
      );
    }
    const exprNode = args[expected - 1] as SyntaxNode;
    const expr = this.expression(exprNode);
    if (typeOf(expr) !== 'vector') {
      throw this.error(
        exprNode,
        `expected type instant vector in aggregation expression, got ${describeType(typeOf(expr))}`,
      );
    }
    let param: Expr | undefined;
    if (hasParam) {
      const paramNode = args[0] as SyntaxNode;
      param = this.expression(paramNode);
      if (typeOf(param) !== 'scalar') {
        throw this.error(
          paramNode,
          `expected type scalar in aggregation parameter, got ${describeType(typeOf(param))}`,
        );
      }
    }
    return { kind: 'aggregation', op: aggregationOp, param, expr, grouping };
  }

  private grouping(node: SyntaxNode): Grouping {
    const [keyword, labelsNode] = childrenOf(node);
    const labels = labelsNode
      ? childrenOf(labelsNode).map((label) => {
          if (label.type.id !== terms.LabelName) throw unsupported(`quoted label name ${this.text(label)}`);
          return this.text(label);
        })
      : [];
    return { mode: keyword?.type.id === terms.Without ? 'without' : 'by', labels };
  }

  private binary(node: SyntaxNode): Expr {
    const children = childrenOf(node);
    const lhsNode = children[0];
    const rhsNode = children[children.length - 1];
    const operatorNode = children[1];
    if (!lhsNode || !rhsNode || !operatorNode || children.length < 3) {
      throw this.error(node, `unexpected "${this.text(node)}"`);
    }
    const op = BINARY_OPERATORS.get(operatorNode.type.id);
    if (!op) throw unsupported(`binary operator "${this.text(operatorNode)}"`);
    let returnBool = false;
    for (const modifier of children.slice(2, -1)) {
      if (modifier.type.id === terms.BoolModifier) returnBool = true;
      else throw unsupported(`vector matching modifier "${this.text(modifier)}"`);
    }

    // lezer reads "-2 ^ 2" as (-2)^2; in PromQL unary minus binds looser than ^, giving -(2^2).
    const lhsText = this.text(lhsNode);
    if (op === '^' && lhsNode.type.id === terms.NumberDurationLiteral && /^[-+]/.test(lhsText)) {
      const magnitude = Math.abs(this.number(lhsNode));
      const power: BinaryOperation = {
        kind: 'binary',
        op,
        lhs: { kind: 'number', value: magnitude },
        rhs: this.expression(rhsNode),
        returnBool,
      };
      this.checkBinary(node, operatorNode, power);
      return { kind: 'unary', op: lhsText[0] === '-' ? '-' : '+', expr: power };
    }

    const expr: BinaryOperation = {
      kind: 'binary',
      op,
      lhs: this.expression(lhsNode),
      rhs: this.expression(rhsNode),
      returnBool,
    };
    this.checkBinary(node, operatorNode, expr);
    return expr;
  }

  private checkBinary(node: SyntaxNode, operatorNode: SyntaxNode, expr: BinaryOperation): void {
    const lhsType = typeOf(expr.lhs);
    const rhsType = typeOf(expr.rhs);
    const operandTypes = ['scalar', 'vector'];
    if (!operandTypes.includes(lhsType) || !operandTypes.includes(rhsType)) {
      throw this.error(node, 'binary expression must contain only scalar and instant vector types');
    }
    if (expr.returnBool && !isComparison(expr.op)) {
      throw this.error(operatorNode, 'bool modifier can only be used on comparison operators');
    }
    if (isComparison(expr.op) && !expr.returnBool && lhsType === 'scalar' && rhsType === 'scalar') {
      throw this.error(operatorNode, 'comparisons between scalars must use BOOL modifier');
    }
    if (lhsType === 'vector' && rhsType === 'vector') throw unsupported('vector-to-vector binary operations');
  }

  private unary(node: SyntaxNode): Expr {
    const [operator, operand] = childrenOf(node);
    if (!operator || !operand) throw this.error(node, `unexpected "${this.text(node)}"`);
    const op = this.text(operator) === '-' ? '-' : '+';
    const expr = this.expression(operand);
    const type = typeOf(expr);
    if (type !== 'scalar' && type !== 'vector') {
      throw this.error(
        node,
        `unary expression only allowed on expressions of type scalar or instant vector, got "${describeType(type)}"`,
      );
    }
    // Prometheus folds a sign into a number literal.
    if (expr.kind === 'number') return { kind: 'number', value: op === '-' ? -expr.value : expr.value };
    return { kind: 'unary', op, expr };
  }
}
