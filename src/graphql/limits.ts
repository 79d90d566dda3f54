import { type ApolloServerPlugin } from '@apollo/server';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
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

export function costLimitPlugin(schema: GraphQLSchema, maxCost: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          let cost: number;
          try {
            cost = getComplexity({
              schema,
              query: document,
              variables: request.variables ?? {},
              operationName: request.operationName ?? undefined,
              estimators: [pageEstimator, simpleEstimator({ defaultComplexity: 1 })],
            });
          } catch {
            // Variables that do not coerce: execution reports them as BAD_USER_INPUT next.
            return;
          }
          if (cost > maxCost) {
            throw tooComplex('cost', maxCost, cost);
          }
        },
      };
    },
  };
}
