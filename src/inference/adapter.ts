/**
 * Step 4 of `infer` (ARCHITECTURE.md, "Inference"): turns a model's defaults, a context and
 * the request into the parameters a run uses. Pure, so that every rule has its own unit test.
 */
import { type ContextSections } from '../domains/context/context.upgrade';
import { badInput } from '../graphql/errors';
import { type EffectiveParameters } from './types';

export interface AdapterInput {
  /** The model's `defaultParameters`; may hold `max_tokens_limit`, which is not a parameter. */
  readonly modelDefaults: Record<string, unknown>;
  /** Null when `infer` has no `contextId`. */
  readonly context: ContextSections | null;
  /** The replica's own load, 0–1 (event-loop utilisation, the model's queue depth). */
  readonly measuredLoad: number;
  /** `infer`'s `parameters` argument. */
  readonly request: Record<string, unknown> | null;
}

export interface Adaptation {
  readonly parameters: EffectiveParameters;
  /** The rules that fired, in the order they ran, e.g. `['creativity:high', 'server-load']`. */
  readonly applied: string[];
}

export interface ParameterRange {
  readonly type: 'number' | 'integer' | 'boolean' | 'strings';
  readonly min?: number;
  /** `min` itself is not allowed. */
  readonly exclusiveMin?: boolean;
  /** `'model-limit'`: the model's `max_tokens_limit`. */
  readonly max?: number | 'model-limit';
  /** `strings`: at most this many items… */
  readonly maxItems?: number;
  /** …each of 1 to this many characters. */
  readonly maxLength?: number;
}

/**
 * Every parameter a client may set, and its allowed values; anything else is refused
 * (an allowlist, so a typo such as `temprature` is an error rather than silently ignored).
 * `server_load` is absent on purpose: it reports what the server measured.
 */
export const PARAMETER_RANGES = {
  temperature: { type: 'number', min: 0, max: 2 },
  top_k: { type: 'integer', min: 1, max: 1000 },
  top_p: { type: 'number', min: 0, exclusiveMin: true, max: 1 },
  max_tokens: { type: 'integer', min: 1, max: 'model-limit' },
  seed: { type: 'integer', min: 0, max: 2 ** 31 - 1 },
  verbose: { type: 'boolean' },
  safety_filter: { type: 'boolean' },
  stop: { type: 'strings', maxItems: 4, maxLength: 32 },
} as const satisfies Readonly<Record<string, ParameterRange>>;

type ParameterName = keyof typeof PARAMETER_RANGES;

/** @default 4096 when the model's defaults name no `max_tokens_limit`. */
export const DEFAULT_MAX_TOKENS_LIMIT = 4096;

const BUILT_IN_DEFAULTS = { temperature: 0.7, top_k: 40, top_p: 0.95, max_tokens: 256 } as const;

const HIGH_LOAD = 0.8;
const NOISY_DATA = 0.6;

const isParameterName = (key: string): key is ParameterName => Object.hasOwn(PARAMETER_RANGES, key);

type Checked =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problem: string };

function describeRange(range: ParameterRange, limit: number): string {
  const max = range.max === 'model-limit' ? limit : range.max;
  return range.exclusiveMin
    ? `greater than ${range.min} and at most ${max}`
    : `from ${range.min} to ${max}`;
}

function check(range: ParameterRange, value: unknown, limit: number): Checked {
  switch (range.type) {
    case 'boolean': {
      return typeof value === 'boolean'
        ? { ok: true, value }
        : { ok: false, problem: 'must be a boolean' };
    }
    case 'strings': {
      const maxItems = range.maxItems ?? Infinity;
      const maxLength = range.maxLength ?? Infinity;
      const fits =
        Array.isArray(value) &&
        value.length <= maxItems &&
        value.every((s) => typeof s === 'string' && s.length >= 1 && s.length <= maxLength);
      return fits
        ? { ok: true, value: [...(value as string[])] }
        : {
            ok: false,
            problem: `must be a list of at most ${maxItems} strings of 1 to ${maxLength} characters`,
          };
    }
    case 'number':
    case 'integer': {
      const kind = range.type === 'integer' ? 'an integer' : 'a number';
      const max = range.max === 'model-limit' ? limit : (range.max ?? Infinity);
      const min = range.min ?? -Infinity;
      const inRange =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (range.type === 'number' || Number.isInteger(value)) &&
        (range.exclusiveMin ? value > min : value >= min) &&
        value <= max;
      return inRange
        ? { ok: true, value }
        : { ok: false, problem: `must be ${kind} ${describeRange(range, limit)}` };
    }
  }
}

/** Validates explicit parameters; `path` names their place in the request for the error. */
function explicitParameters(
  values: Record<string, unknown>,
  path: string,
  limit: number,
): Partial<EffectiveParameters> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const where = `${path}.${key}`;
    if (!isParameterName(key)) {
      throw badInput(
        `${where}: unknown parameter (allowed: ${Object.keys(PARAMETER_RANGES).join(', ')})`,
        { path: where },
      );
    }
    const checked = check(PARAMETER_RANGES[key], value, limit);
    if (!checked.ok) {
      throw badInput(`${where}: ${checked.problem}`, { path: where });
    }
    result[key] = checked.value;
  }
  return result as Partial<EffectiveParameters>;
}

/**
 * The model's defaults come from the registry, not from the caller, so a bad entry there must
 * not fail the caller's request with BAD_USER_INPUT: unknown keys and invalid values are
 * skipped, and a `max_tokens` above the limit is clamped later like any other.
 */
function modelParameters(defaults: Record<string, unknown>): Partial<EffectiveParameters> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(defaults)) {
    if (isParameterName(key)) {
      const checked = check(PARAMETER_RANGES[key], value, Infinity);
      if (checked.ok) {
        result[key] = checked.value;
      }
    }
  }
  return result as Partial<EffectiveParameters>;
}

function maxTokensLimit(defaults: Record<string, unknown>): number {
  const limit = defaults.max_tokens_limit;
  return typeof limit === 'number' && Number.isInteger(limit) && limit >= 1
    ? limit
    : DEFAULT_MAX_TOKENS_LIMIT;
}

/** Preferences are free-form, so `"High"` and `" high "` mean `"high"`. */
const word = (value: unknown): string | undefined =>
  typeof value === 'string' ? value.trim().toLowerCase() : undefined;

const roundLoad = (load: number): number => Math.round(load * 1000) / 1000;

function clampLoad(load: number): number {
  return Number.isFinite(load) ? Math.min(1, Math.max(0, load)) : 0;
}

/** What the rules read, gathered once; without a context only the measured load is known. */
interface Facts {
  readonly preferences: Readonly<Record<string, unknown>>;
  /** `DeploymentEnvironment` as a plain string, so this module need not load the GraphQL enum. */
  readonly deployment: string | null;
  /** max(context serverLoad, measured load), rounded as reported. */
  readonly load: number;
  readonly noise: number | null;
}

function factsOf(input: AdapterInput): Facts {
  const { context } = input;
  const contextLoad = clampLoad(context?.environment.serverLoad ?? 0);
  const metrics = context?.data.qualityMetrics ?? {};
  const noise = typeof metrics.noiseLevel === 'number' ? metrics.noiseLevel : metrics.noise_level;
  return {
    preferences: context?.user.preferences ?? {},
    deployment: context?.environment.deploymentEnvironment ?? null,
    load: roundLoad(Math.max(contextLoad, clampLoad(input.measuredLoad))),
    noise: typeof noise === 'number' && Number.isFinite(noise) ? noise : null,
  };
}

type Rule = (p: EffectiveParameters, facts: Facts) => string | null;

/** The context rules in the order the design lists them; each returns its name when it fired. */
const RULES: readonly Rule[] = [
  function creativity(p, { preferences }) {
    const value = preferences.creativity;
    if (typeof value === 'number' && value >= 0 && value <= 1) {
      // 0 → 0.2 and 1 → 1.1 bracket the words: 'low' (≤ 0.3) and 'high' (≥ 0.9).
      p.temperature = Math.round((0.2 + 0.9 * value) * 1000) / 1000;
      return `creativity:${value}`;
    }
    switch (word(value)) {
      case 'high':
        p.temperature = Math.max(p.temperature, 0.9);
        return 'creativity:high';
      case 'medium':
        p.temperature = 0.7;
        return 'creativity:medium';
      case 'low':
        p.temperature = Math.min(p.temperature, 0.3);
        return 'creativity:low';
      default:
        return null;
    }
  },
  function verbosity(p, { preferences }) {
    switch (word(preferences.verbosity)) {
      case 'concise':
        p.max_tokens = Math.min(p.max_tokens, 256);
        return 'verbosity:concise';
      case 'detailed':
        p.max_tokens = Math.max(p.max_tokens, 1024);
        return 'verbosity:detailed';
      default:
        return null;
    }
  },
  function deployment(p, facts) {
    if (facts.deployment === 'DEVELOPMENT') {
      p.verbose = true;
      return 'environment:development';
    }
    if (facts.deployment === 'PRODUCTION') {
      p.safety_filter = true;
      return 'environment:production';
    }
    return null;
  },
  // Degrades gracefully under real pressure: shorter, less branching generations.
  function serverLoad(p, { load }) {
    p.server_load = load;
    if (load <= HIGH_LOAD) {
      return null;
    }
    p.max_tokens = Math.min(p.max_tokens, 512);
    p.top_k = Math.min(p.top_k, 10);
    return 'server-load';
  },
  function dataNoise(p, { noise }) {
    if (noise === null || noise <= NOISY_DATA) {
      return null;
    }
    p.temperature = Math.min(p.temperature, 0.4);
    p.top_p = Math.min(p.top_p, 0.92);
    return 'data-noise';
  },
];

/**
 * Effective parameters, later sources winning: built-in defaults ← the model's defaults ←
 * the context's rules (creativity, verbosity, deployment, server load, data noise) ← the
 * context's `model.parameters` ← the request's `parameters`. `max_tokens` never exceeds the
 * model's limit.
 *
 * Explicit parameters win over every rule, including `safety_filter: true` in production: a
 * caller that must not be able to turn the filter off has to be stopped before this point.
 *
 * @throws AppError BAD_USER_INPUT naming the first unknown or out-of-range explicit parameter.
 */
export function adaptParameters(input: AdapterInput): Adaptation {
  const limit = maxTokensLimit(input.modelDefaults);
  const { context } = input;
  const applied: string[] = [];

  // Validated before any rule runs, so a bad request fails the same way with or without a context.
  const fromContext = context
    ? explicitParameters(context.model.parameters, 'context.model.parameters', limit)
    : {};
  const fromRequest = input.request ? explicitParameters(input.request, 'parameters', limit) : {};

  const p: EffectiveParameters = {
    ...BUILT_IN_DEFAULTS,
    ...modelParameters(input.modelDefaults),
    server_load: 0,
  };
  const clampMaxTokens = () => {
    if (p.max_tokens > limit) {
      p.max_tokens = limit;
      if (!applied.includes('max-tokens-limit')) {
        applied.push('max-tokens-limit');
      }
    }
  };
  clampMaxTokens();

  const facts = factsOf(input);
  for (const rule of RULES) {
    const name = rule(p, facts);
    if (name) {
      applied.push(name);
    }
    clampMaxTokens();
  }

  if (Object.keys(fromContext).length > 0) {
    Object.assign(p, fromContext);
    applied.push('context-parameters');
  }
  if (Object.keys(fromRequest).length > 0) {
    Object.assign(p, fromRequest);
    applied.push('request-parameters');
  }
  clampMaxTokens();
  return { parameters: p, applied };
}
