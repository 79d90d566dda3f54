import { type ApolloServerPlugin } from '@apollo/server';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { getComplexity, simpleEstimator, type ComplexityEstimator } from 'graphql-query-complexity';
import { ErrorCode } from './errors';

export interface QueryLimits {
  readonly maxDepth: number;
  readonly maxAliases: number;
  readonly maxDirectives: number;
  readonly maxTokens: number;
  readonly maxCost: number;
}

/** A refusal that names the limit, its value and what the operation had. */
export function tooComplex(limit: string, max: number, found?: number): GraphQLError {
  return new GraphQLError(
    `Operation exceeds the ${limit} limit of ${max}${found === undefined ? '' : ` (found ${found})`}`,
    {
      extensions: {
        code: ErrorCode.QUERY_TOO_COMPLEX,
        limit,
        max,
        ...(found === undefined ? {} : { found }),
        // Apollo answers hook errors with 500 unless told otherwise; this is the client's doing.
        http: { status: 400 },
      },
    },
  );
}

/** graphql-armor's checks, reporting our coded error instead of their plain one. */
function armor(
  rule: (options: object) => (ctx: ValidationContext) => unknown,
  limit: string,
  max: number,
): ValidationRule {
  const found = (message: string) => Number(/found (\d+)/.exec(message)?.[1] ?? NaN);
  return rule({
    n: max,
    propagateOnRejection: false,
    onReject: [
      (ctx: ValidationContext | null, error: GraphQLError) => {
        const n = found(error.message);
        ctx?.reportError(tooComplex(limit, max, Number.isNaN(n) ? undefined : n));
      },
    ],
  }) as ValidationRule;
}

/** Depth, aliases and directives, checked while validating (before anything runs). */
export function limitRules(limits: QueryLimits): ValidationRule[] {
  return [
    armor(maxDepthRule as never, 'depth', limits.maxDepth),
    armor(maxAliasesRule as never, 'aliases', limits.maxAliases),
    armor(maxDirectivesRule as never, 'directives', limits.maxDirectives),
  ];
}

/**
 * Cost: each field costs 1, and a field taking `first` or `last` multiplies the cost of its
 * selection by that page size (connections without it by their default), so
 * `contexts(first: 100) { … history(first: 50) }` costs what it will really fetch.
 */
const pageEstimator: ComplexityEstimator = ({ args, childComplexity }) => {
  const size = Number(args.first ?? args.last ?? 0);
  return 1 + childComplexity * (Number.isFinite(size) && size > 1 ? size : 1);
};

/**
 * A document's cost depends only on the variables that can be page sizes (`first: $n`) or
 * conditions (`@include(if: $b)`), which are numbers and booleans; a tensor of a thousand
 * values in a JSON variable does not change it. Costs are kept per parsed document (the
 * servers cache those) and per such variables, so a repeated operation is costed once.
 */
const costs = new WeakMap<DocumentNode, Map<string, number>>();
const COSTS_PER_DOCUMENT = 100;

function costKey(operationName: string | undefined, variables: Record<string, unknown>): string {
  const shaping = Object.entries(variables).filter(
    ([, v]) => v === null || typeof v === 'number' || typeof v === 'boolean',
  );
  return JSON.stringify([operationName ?? null, shaping]);
}

export function costLimitPlugin(schema: GraphQLSchema, maxCost: number): ApolloServerPlugin {
  const costOf = (
    document: DocumentNode,
    variables: Record<string, unknown>,
    operationName: string | undefined,
  ): number | undefined => {
    let known = costs.get(document);
    const key = costKey(operationName, variables);
    const cached = known?.get(key);
    if (cached !== undefined) {
      return cached;
    }
    let cost: number;
    try {
      cost = getComplexity({
        schema,
        query: document,
        variables,
        operationName,
        estimators: [pageEstimator, simpleEstimator({ defaultComplexity: 1 })],
      });
    } catch {
      // Variables that do not coerce: execution reports them as BAD_USER_INPUT next.
      return undefined;
    }
    if (!known) {
      known = new Map();
      costs.set(document, known);
    }
    if (known.size < COSTS_PER_DOCUMENT) {
      known.set(key, cost);
    }
    return cost;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const cost = costOf(
            document,
            request.variables ?? {},
            request.operationName ?? undefined,
          );
          if (cost !== undefined && cost > maxCost) {
            throw tooComplex('cost', maxCost, cost);
          }
        },
      };
    },
  };
}
