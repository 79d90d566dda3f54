import { describe, expect, it } from 'vitest';
import { toStored, upgradeSections } from '../../../src/domains/context/context.upgrade';

const CREATED = new Date('2025-05-01T00:00:00.000Z');

describe('upgradeSections', () => {
  it("reads a version-0 row (the guide's shape) in today's shape and lifts its session history", () => {
    const { sections, legacyHistory } = upgradeSections(
      0,
      {
        userData: {
          user_id: 'u-1',
          preferences: { language: 'fr' },
          demographics: { region: 'EU' },
          session_history: [
            { timestamp: '2025-05-02T10:00:00Z', input: 'hi', output: 'hello' },
            'a bare string turn',
          ],
        },
        environment: {
          timestamp: '2025-05-01T12:00:00Z',
          deployment_environment: 'staging',
          server_load: 0.7,
          available_resources: { cpu: 4 },
        },
        modelData: {
          model_id: 'gpt',
          model_version: '2',
          parameters: { temperature: 0.5 },
          constraints: { max: 1 },
        },
        data: {
          data_source: 'crm',
          data_timestamp: '2025-04-30T00:00:00Z',
          data_quality_metrics: { noiseLevel: 0.8 },
        },
        customAttributes: { tier: 'gold' },
      },
      CREATED,
    );
    expect(sections).toEqual({
      user: { preferences: { language: 'fr' }, demographics: { region: 'EU' } },
      environment: {
        timestamp: '2025-05-01T12:00:00.000Z',
        deploymentEnvironment: 'STAGING',
        serverLoad: 0.7,
        availableResources: { cpu: 4 },
      },
      model: { parameters: { temperature: 0.5 }, constraints: { max: 1 } },
      data: {
        source: 'crm',
        timestamp: '2025-04-30T00:00:00.000Z',
        qualityMetrics: { noiseLevel: 0.8 },
      },
      customAttributes: { tier: 'gold' },
    });
    expect(legacyHistory).toEqual([
      { timestamp: '2025-05-02T10:00:00.000Z', input: 'hi', output: 'hello' },
      { timestamp: null, input: 'a bare string turn', output: null },
    ]);
  });

  it('fills what an old row lacks with defaults instead of failing', () => {
    const { sections } = upgradeSections(
      0,
      {
        userData: null,
        environment: {},
        modelData: 'junk',
        data: { data_timestamp: 'not a date' },
        customAttributes: [],
      },
      CREATED,
    );
    expect(sections.environment).toEqual({
      timestamp: CREATED.toISOString(),
      deploymentEnvironment: 'PRODUCTION',
      serverLoad: 0,
      availableResources: {},
    });
    expect(sections.data).toEqual({ source: 'unknown', timestamp: null, qualityMetrics: {} });
    expect(sections.customAttributes).toEqual({});
  });

  it('reads back exactly what today’s shape stored', () => {
    const sections = {
      user: { preferences: { a: 1 }, demographics: null },
      environment: {
        timestamp: '2025-01-01T00:00:00.000Z',
        deploymentEnvironment: 'TEST' as const,
        serverLoad: 0.3,
        availableResources: {},
      },
      model: { parameters: {}, constraints: {} },
      data: { source: 's', timestamp: null, qualityMetrics: { q: 1 } },
      customAttributes: { c: true },
    };
    expect(upgradeSections(1, toStored(sections as never), CREATED)).toEqual({
      sections,
      legacyHistory: [],
    });
  });

  it('refuses a schema version it does not know', () => {
    expect(() => upgradeSections(9, toStored({} as never), CREATED)).toThrow(
      'Unknown context schema version 9',
    );
  });
});
