import {
  defaultFieldResolver,
  GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
} from 'graphql';
import { allow } from 'graphql-shield';
import { contextRules } from '../domains/context/context.rules';
import { historyRules } from '../domains/history/history.rules';
import { inferenceRules } from '../domains/inference/inference.rules';
import { modelRules } from '../domains/model/model.rules';
import { userRules } from '../domains/user/user.rules';
import { forbidden } from './errors';

type RuleMap = Record<string, unknown>;

const isFieldMap = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/**
 * Merges the per-domain maps. A type maps either to one rule or to a map of field rules;
 * two domains ruling the same field is a programming error.
 */
export function mergeRules(...maps: RuleMap[]): RuleMap {
  const merged: RuleMap = {};
  for (const map of maps) {
    for (const [type, rules] of Object.entries(map)) {
      const existing = merged[type];
      if (existing === undefined) {
        merged[type] = isFieldMap(rules) ? { ...rules } : rules;
        continue;
      }
      if (!isFieldMap(existing) || !isFieldMap(rules)) {
        throw new Error(`Conflicting permission rules for type ${type}`);
      }
      for (const field of Object.keys(rules)) {
        if (field in existing) {
          throw new Error(`Conflicting permission rules for ${type}.${field}`);
        }
      }
      Object.assign(existing, rules);
    }
  }
  return merged;
}

export const RULES = mergeRules(userRules, contextRules, modelRules, inferenceRules, historyRules);

interface ShieldRule {
  resolve(
    parent: unknown,
    args: unknown,
    ctx: unknown,
    info: GraphQLResolveInfo,
    options: { debug: boolean; hashFunction: (arg: unknown) => string },
  ): Promise<boolean | Error>;
}

type ShieldContext = { _shield?: { cache: object } };

/** Evaluates a field's rule (none: denied); throws the rule's error or FORBIDDEN. */
async function enforce(
  rule: ShieldRule | undefined,
  parent: unknown,
  args: unknown,
  ctx: ShieldContext,
  info: GraphQLResolveInfo,
): Promise<void> {
  // graphql-shield's rules cache their verdicts per request in ctx._shield.
  ctx._shield ??= { cache: {} };
  const verdict = rule
    ? await rule.resolve(parent, args, ctx, info, { debug: false, hashFunction: JSON.stringify })
    : false;
  if (verdict !== true) {
    throw verdict instanceof Error ? verdict : forbidden('Not allowed');
  }
}

/**
 * applyPermissions wraps only `resolve`, so a subscription's `subscribe` (where the stream
 * is opened) would run unchecked and only each delivered event would be judged. This applies
 * the same Subscription rules at subscribe time; a field without a rule is denied.
 */
export function guardSubscriptions(schema: GraphQLSchema): GraphQLSchema {
  const fields = schema.getSubscriptionType()?.getFields() ?? {};
  const rules = (RULES.Subscription ?? {}) as Record<string, ShieldRule | undefined>;
  for (const [name, field] of Object.entries(fields)) {
    const subscribe = field.subscribe;
    const rule = rules[name];
    field.subscribe = async (parent, args, ctx: ShieldContext, info) => {
      await enforce(rule, parent, args, ctx, info);
      return subscribe ? subscribe(parent, args, ctx, info) : undefined;
    };
  }
  return schema;
}

/**
 * Deny by default: the graphql-shield rules applied straight onto the resolvers. A field
 * whose rule is `allow` keeps its resolver untouched — graphql-shield's own middleware made
 * every field of every page async, which the bench measured as the largest cost of a
 * contexts query — others are checked first, and a field with no rule is refused.
 * Errors thrown by resolvers pass through with their codes (unexpected ones are masked
 * later by formatError).
 */
export function applyPermissions(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!(type instanceof GraphQLObjectType) || type.name.startsWith('__')) {
      continue;
    }
    const typeRules = RULES[type.name];
    for (const [name, field] of Object.entries(type.getFields())) {
      const rule = (isFieldMap(typeRules) ? (typeRules[name] ?? typeRules['*']) : typeRules) as
        ShieldRule | undefined;
      if ((rule as unknown) === allow) {
        continue;
      }
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = async (parent, args, ctx: ShieldContext, info) => {
        await enforce(rule, parent, args, ctx, info);
        return resolve(parent, args, ctx, info);
      };
    }
  }
  return schema;
}
