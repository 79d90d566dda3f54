import { describe, expect, it } from 'vitest';
import { type ContextSections } from '../../../src/domains/context/context.upgrade';
import { DeploymentEnvironment } from '../../../src/domains/context/context.types';
import { AppError } from '../../../src/graphql/errors';
import { type AdapterInput, adaptParameters } from '../../../src/inference/adapter';

interface ContextShape {
  preferences?: Record<string, unknown>;
  deploymentEnvironment?: DeploymentEnvironment;
  serverLoad?: number;
  modelParameters?: Record<string, unknown>;
  qualityMetrics?: Record<string, unknown>;
}

function contextWith(shape: ContextShape = {}): ContextSections {
  return {
    user: { preferences: shape.preferences ?? {}, demographics: null },
    environment: {
      timestamp: '2025-05-01T00:00:00.000Z',
      deploymentEnvironment: shape.deploymentEnvironment ?? DeploymentEnvironment.STAGING,
      serverLoad: shape.serverLoad ?? 0,
      availableResources: {},
    },
    model: { parameters: shape.modelParameters ?? {}, constraints: {} },
    data: { source: 'test', timestamp: null, qualityMetrics: shape.qualityMetrics ?? {} },
    customAttributes: {},
  };
}

function adapt(input: Partial<AdapterInput> & { shape?: ContextShape } = {}) {
  const { shape, ...rest } = input;
  return adaptParameters({
    modelDefaults: {},
    context: shape ? contextWith(shape) : null,
    measuredLoad: 0,
    request: null,
    ...rest,
  });
}

const withPreferences = (preferences: Record<string, unknown>, modelDefaults = {}) =>
  adapt({ shape: { preferences }, modelDefaults }).parameters;

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected a refusal');
}

describe('adaptParameters', () => {
  describe('defaults', () => {
    it('uses the built-in defaults when there is neither a model default nor a context', () => {
      const { parameters, applied } = adapt();
      expect(parameters).toEqual({
        temperature: 0.7,
        top_k: 40,
        top_p: 0.95,
        max_tokens: 256,
        server_load: 0,
      });
      expect(applied).toEqual([]);
    });

    it("lets the model's defaults replace the built-in ones but never passes max_tokens_limit on", () => {
      const { parameters } = adapt({
        modelDefaults: { temperature: 0.5, top_k: 20, max_tokens_limit: 128 },
      });
      expect(parameters).toMatchObject({ temperature: 0.5, top_k: 20, max_tokens: 128 });
      expect(parameters).not.toHaveProperty('max_tokens_limit');
    });

    it("skips unknown or invalid model defaults instead of failing the caller's request", () => {
      const { parameters } = adapt({ modelDefaults: { temperature: 'hot', beam_width: 4 } });
      expect(parameters.temperature).toBe(0.7);
      expect(parameters).not.toHaveProperty('beam_width');
    });
  });

  describe('creativity', () => {
    it('raises temperature to at least 0.9 for high creativity', () => {
      expect(withPreferences({ creativity: 'high' }).temperature).toBe(0.9);
      expect(withPreferences({ creativity: 'high' }, { temperature: 1.2 }).temperature).toBe(1.2);
    });

    it('lowers temperature to at most 0.3 for low creativity', () => {
      expect(withPreferences({ creativity: 'low' }).temperature).toBe(0.3);
      expect(withPreferences({ creativity: 'low' }, { temperature: 0.1 }).temperature).toBe(0.1);
    });

    it('sets temperature to 0.7 for medium creativity', () => {
      expect(withPreferences({ creativity: 'medium' }, { temperature: 1.5 }).temperature).toBe(0.7);
    });

    it('maps a creativity number from 0 to 1 monotonically onto the low and high temperatures', () => {
      const temperatures = [0, 0.25, 0.5, 0.75, 1].map(
        (c) => withPreferences({ creativity: c }).temperature,
      );
      expect(temperatures[0]).toBeLessThanOrEqual(0.3);
      expect(temperatures[4]).toBeGreaterThanOrEqual(0.9);
      expect([...temperatures].sort((a, b) => a - b)).toEqual(temperatures);
      expect(new Set(temperatures).size).toBe(5);
    });

    it('reads creativity words regardless of case and ignores values it does not know', () => {
      expect(withPreferences({ creativity: ' High ' }).temperature).toBe(0.9);
      for (const creativity of ['wild', 7, -1, null, { level: 'high' }]) {
        const { parameters, applied } = adapt({ shape: { preferences: { creativity } } });
        expect(parameters.temperature).toBe(0.7);
        expect(applied).toEqual([]);
      }
    });
  });

  describe('verbosity', () => {
    it('caps max_tokens at 256 for concise verbosity', () => {
      expect(withPreferences({ verbosity: 'concise' }, { max_tokens: 2000 }).max_tokens).toBe(256);
      expect(withPreferences({ verbosity: 'concise' }, { max_tokens: 64 }).max_tokens).toBe(64);
    });

    it('raises max_tokens to at least 1024 for detailed verbosity', () => {
      expect(withPreferences({ verbosity: 'detailed' }).max_tokens).toBe(1024);
      expect(withPreferences({ verbosity: 'detailed' }, { max_tokens: 3000 }).max_tokens).toBe(
        3000,
      );
    });

    it("clamps detailed verbosity to the model's max_tokens_limit", () => {
      const { parameters, applied } = adapt({
        modelDefaults: { max_tokens_limit: 500 },
        shape: { preferences: { verbosity: 'detailed' } },
      });
      expect(parameters.max_tokens).toBe(500);
      expect(applied).toEqual(['verbosity:detailed', 'max-tokens-limit']);
    });

    it('clamps max_tokens to 4096 when the model names no limit', () => {
      expect(adapt({ modelDefaults: { max_tokens: 9000 } }).parameters.max_tokens).toBe(4096);
    });
  });

  describe('deployment environment', () => {
    it('turns verbose on in development', () => {
      const { parameters, applied } = adapt({
        shape: { deploymentEnvironment: DeploymentEnvironment.DEVELOPMENT },
      });
      expect(parameters.verbose).toBe(true);
      expect(parameters).not.toHaveProperty('safety_filter');
      expect(applied).toEqual(['environment:development']);
    });

    it('turns the safety filter on in production', () => {
      const { parameters, applied } = adapt({
        shape: { deploymentEnvironment: DeploymentEnvironment.PRODUCTION },
      });
      expect(parameters.safety_filter).toBe(true);
      expect(parameters).not.toHaveProperty('verbose');
      expect(applied).toEqual(['environment:production']);
    });

    it('sets neither flag in staging or test', () => {
      for (const deploymentEnvironment of [
        DeploymentEnvironment.STAGING,
        DeploymentEnvironment.TEST,
      ]) {
        const { parameters } = adapt({ shape: { deploymentEnvironment } });
        expect(parameters).not.toHaveProperty('verbose');
        expect(parameters).not.toHaveProperty('safety_filter');
      }
    });
  });

  describe('server load', () => {
    it('caps max_tokens at 512 and top_k at 10 when the load is above 0.8', () => {
      const { parameters, applied } = adapt({
        modelDefaults: { max_tokens: 2000, top_k: 50 },
        shape: { serverLoad: 0.85 },
      });
      expect(parameters).toMatchObject({ max_tokens: 512, top_k: 10, server_load: 0.85 });
      expect(applied).toEqual(['server-load']);
    });

    it('leaves max_tokens and top_k alone at a load of 0.8 or less', () => {
      const { parameters, applied } = adapt({
        modelDefaults: { max_tokens: 2000 },
        shape: { serverLoad: 0.8 },
      });
      expect(parameters).toMatchObject({ max_tokens: 2000, top_k: 40, server_load: 0.8 });
      expect(applied).toEqual([]);
    });

    it("uses the replica's measured load when it is higher than the context's, even without a context", () => {
      expect(adapt({ shape: { serverLoad: 0.2 }, measuredLoad: 0.95 }).parameters).toMatchObject({
        top_k: 10,
        server_load: 0.95,
      });
      expect(adapt({ measuredLoad: 0.9 }).parameters).toMatchObject({
        top_k: 10,
        server_load: 0.9,
      });
    });

    it("uses the context's load when it is higher than the measured one", () => {
      expect(adapt({ shape: { serverLoad: 0.9 }, measuredLoad: 0.1 }).parameters.server_load).toBe(
        0.9,
      );
    });

    it('reports the load rounded to three decimals and bounded to 0–1', () => {
      expect(adapt({ measuredLoad: 0.123456 }).parameters.server_load).toBe(0.123);
      expect(adapt({ measuredLoad: 3 }).parameters.server_load).toBe(1);
      expect(adapt({ measuredLoad: Number.NaN }).parameters.server_load).toBe(0);
    });
  });

  describe('data noise', () => {
    it('caps temperature at 0.4 and top_p at 0.92 when the noise level is above 0.6', () => {
      const { parameters, applied } = adapt({
        shape: { preferences: { creativity: 'high' }, qualityMetrics: { noiseLevel: 0.7 } },
      });
      expect(parameters).toMatchObject({ temperature: 0.4, top_p: 0.92 });
      expect(applied).toEqual(['creativity:high', 'data-noise']);
    });

    it('reads noise_level as well as noiseLevel', () => {
      expect(adapt({ shape: { qualityMetrics: { noise_level: 0.9 } } }).applied).toEqual([
        'data-noise',
      ]);
    });

    it('leaves temperature and top_p alone at a noise level of 0.6 or less', () => {
      const { parameters } = adapt({ shape: { qualityMetrics: { noiseLevel: 0.6 } } });
      expect(parameters).toMatchObject({ temperature: 0.7, top_p: 0.95 });
    });
  });

  describe('order and explicit parameters', () => {
    it("gives the issue's example high temperature, few tokens, a small top_k and the safety filter", () => {
      const { parameters, applied } = adapt({
        shape: {
          preferences: { creativity: 'high', verbosity: 'concise', formality: 'formal' },
          serverLoad: 0.9,
          deploymentEnvironment: DeploymentEnvironment.PRODUCTION,
        },
      });
      expect(parameters.temperature).toBeGreaterThanOrEqual(0.9);
      expect(parameters.max_tokens).toBeLessThanOrEqual(256);
      expect(parameters.top_k).toBeLessThanOrEqual(10);
      expect(parameters.safety_filter).toBe(true);
      expect(parameters.server_load).toBe(0.9);
      expect(applied).toEqual([
        'creativity:high',
        'verbosity:concise',
        'environment:production',
        'server-load',
      ]);
    });

    it("lets the context's model parameters override every context rule", () => {
      const { parameters, applied } = adapt({
        shape: {
          preferences: { creativity: 'high' },
          serverLoad: 0.9,
          modelParameters: { temperature: 0.2, top_k: 30 },
        },
      });
      expect(parameters).toMatchObject({ temperature: 0.2, top_k: 30 });
      expect(applied).toEqual(['creativity:high', 'server-load', 'context-parameters']);
    });

    it("lets the request's parameters override the context's and every rule", () => {
      const { parameters, applied } = adapt({
        shape: {
          modelParameters: { temperature: 0.2, seed: 1 },
          deploymentEnvironment: DeploymentEnvironment.PRODUCTION,
        },
        request: { temperature: 1.5, seed: 42, safety_filter: false, stop: ['\n\n'] },
      });
      expect(parameters).toMatchObject({
        temperature: 1.5,
        seed: 42,
        safety_filter: false,
        stop: ['\n\n'],
      });
      expect(applied).toEqual([
        'environment:production',
        'context-parameters',
        'request-parameters',
      ]);
    });

    it('accepts every parameter at the edges of its range', () => {
      const { parameters } = adapt({
        modelDefaults: { max_tokens_limit: 100 },
        request: {
          temperature: 0,
          top_k: 1000,
          top_p: 1,
          max_tokens: 100,
          seed: 2 ** 31 - 1,
          verbose: false,
          stop: ['a', 'b', 'c', 'x'.repeat(32)],
        },
      });
      expect(parameters).toMatchObject({ temperature: 0, top_k: 1000, top_p: 1, max_tokens: 100 });
    });
  });

  describe('refusals', () => {
    it.each([
      ['an unknown key', { temprature: 1 }, 'temprature', 'unknown parameter'],
      ['server_load, which only the server reports', { server_load: 0 }, 'server_load', 'unknown'],
      ['a temperature above 2', { temperature: 2.1 }, 'temperature', 'from 0 to 2'],
      ['a temperature given as a string', { temperature: '1' }, 'temperature', 'a number'],
      ['a fractional top_k', { top_k: 1.5 }, 'top_k', 'an integer'],
      ['a top_k of 0', { top_k: 0 }, 'top_k', 'from 1 to 1000'],
      ['a top_p of 0', { top_p: 0 }, 'top_p', 'greater than 0'],
      ['a top_p above 1', { top_p: 1.01 }, 'top_p', 'at most 1'],
      ["max_tokens above the model's limit", { max_tokens: 4097 }, 'max_tokens', 'from 1 to 4096'],
      ['a negative seed', { seed: -1 }, 'seed', 'an integer'],
      ['a seed above 2^31 - 1', { seed: 2 ** 31 }, 'seed', 'an integer'],
      ['a verbose flag given as a string', { verbose: 'yes' }, 'verbose', 'a boolean'],
      ['more than four stop strings', { stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', 'at most 4'],
      ['a stop string over 32 characters', { stop: ['x'.repeat(33)] }, 'stop', 'strings'],
      ['an empty stop string', { stop: [''] }, 'stop', 'strings'],
      ['a stop given as a string', { stop: 'END' }, 'stop', 'list'],
      ['a null value', { seed: null }, 'seed', 'an integer'],
    ])('refuses %s in the request, naming the parameter', (_, request, key, problem) => {
      const error = refusal(() => adapt({ request }));
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(new RegExp(`^parameters\\.${key}: .*${problem}`));
      expect(error.extensions).toMatchObject({ path: `parameters.${key}` });
    });

    it("refuses a bad parameter in the context's model section under its own path", () => {
      const error = refusal(() => adapt({ shape: { modelParameters: { top_k: -5 } } }));
      expect(error.message).toMatch(/^context\.model\.parameters\.top_k: /);
      expect(error.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        path: 'context.model.parameters.top_k',
      });
    });

    it("checks max_tokens against the model's own limit", () => {
      const error = refusal(() =>
        adapt({ modelDefaults: { max_tokens_limit: 64 }, request: { max_tokens: 65 } }),
      );
      expect(error.message).toBe('parameters.max_tokens: must be an integer from 1 to 64');
    });
  });
});
