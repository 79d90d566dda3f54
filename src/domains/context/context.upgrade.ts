import { type JsonObject } from '../../graphql/scalars';
import { DeploymentEnvironment } from './context.types';

/** The shape every section has today. Rows of older versions are upgraded to it on read. */
export const CURRENT_SCHEMA_VERSION = 1;

export interface ContextSections {
  readonly user: { readonly preferences: JsonObject; readonly demographics: JsonObject | null };
  readonly environment: {
    readonly timestamp: string;
    readonly deploymentEnvironment: DeploymentEnvironment;
    readonly serverLoad: number;
    readonly availableResources: JsonObject;
  };
  readonly model: { readonly parameters: JsonObject; readonly constraints: JsonObject };
  readonly data: {
    readonly source: string;
    readonly timestamp: string | null;
    readonly qualityMetrics: JsonObject;
  };
  readonly customAttributes: JsonObject;
}

/** The sections as stored: the JSON columns plus the decrypted ciphertext columns. */
export interface StoredSections {
  readonly userData: unknown;
  readonly environment: unknown;
  readonly modelData: unknown;
  readonly data: unknown;
  readonly customAttributes: unknown;
}

/** A turn kept inside the user section by version 0 (the guide's `session_history`). */
export interface LegacyTurn {
  readonly timestamp: string | null;
  readonly input: unknown;
  readonly output: unknown;
}

export interface Upgraded {
  readonly sections: ContextSections;
  /** Turns to move into history_entries when the upgrade is written back. */
  readonly legacyHistory: LegacyTurn[];
}

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const objectOr = (v: unknown, fallback: JsonObject = {}): JsonObject =>
  isObject(v) ? v : fallback;
const stringOr = <T extends string | null>(v: unknown, fallback: T): string | T =>
  typeof v === 'string' ? v : fallback;
const isoOr = <T extends string | null>(v: unknown, fallback: T): string | T =>
  typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v).toISOString() : fallback;

function deployment(value: unknown): DeploymentEnvironment {
  const upper = typeof value === 'string' ? value.toUpperCase() : '';
  return (Object.values(DeploymentEnvironment) as string[]).includes(upper)
    ? (upper as DeploymentEnvironment)
    : DeploymentEnvironment.PRODUCTION;
}

function load(value: unknown): number {
  return typeof value === 'number' && value >= 0 && value <= 1 ? value : 0;
}

/** Where each field lives in the stored JSON of one schema version. */
interface FieldNames {
  readonly deploymentEnvironment: string;
  readonly serverLoad: string;
  readonly availableResources: string;
  readonly source: string;
  readonly dataTimestamp: string;
  readonly qualityMetrics: string;
}

/**
 * Version 0 is the guide's document shape (snake_case sections, `session_history` inside the
 * user section, model identified inside `model`): see ../shared/reference. Version 1 is
 * today's camelCase shape.
 */
const FIELD_NAMES: Readonly<Record<number, FieldNames>> = {
  0: {
    deploymentEnvironment: 'deployment_environment',
    serverLoad: 'server_load',
    availableResources: 'available_resources',
    source: 'data_source',
    dataTimestamp: 'data_timestamp',
    qualityMetrics: 'data_quality_metrics',
  },
  1: {
    deploymentEnvironment: 'deploymentEnvironment',
    serverLoad: 'serverLoad',
    availableResources: 'availableResources',
    source: 'source',
    dataTimestamp: 'timestamp',
    qualityMetrics: 'qualityMetrics',
  },
};

function legacyTurns(user: JsonObject): LegacyTurn[] {
  const history = Array.isArray(user.session_history) ? user.session_history : [];
  return history.map((turn: unknown) =>
    isObject(turn)
      ? {
          timestamp: isoOr(turn.timestamp, null),
          input: turn.input ?? null,
          output: turn.output ?? null,
        }
      : { timestamp: null, input: turn, output: null },
  );
}

/** Reads stored sections of any known schema version in today's shape. */
export function upgradeSections(
  schemaVersion: number,
  stored: StoredSections,
  createdAt: Date,
): Upgraded {
  const names = FIELD_NAMES[schemaVersion];
  if (!names) {
    throw new Error(`Unknown context schema version ${schemaVersion}`);
  }
  const user = objectOr(stored.userData);
  const env = objectOr(stored.environment);
  const model = objectOr(stored.modelData);
  const data = objectOr(stored.data);
  return {
    sections: {
      user: {
        preferences: objectOr(user.preferences),
        demographics: isObject(user.demographics) ? user.demographics : null,
      },
      environment: {
        timestamp: isoOr(env.timestamp, createdAt.toISOString()),
        deploymentEnvironment: deployment(env[names.deploymentEnvironment]),
        serverLoad: load(env[names.serverLoad]),
        availableResources: objectOr(env[names.availableResources]),
      },
      model: { parameters: objectOr(model.parameters), constraints: objectOr(model.constraints) },
      data: {
        source: stringOr(data[names.source], 'unknown'),
        timestamp: isoOr(data[names.dataTimestamp], null),
        qualityMetrics: objectOr(data[names.qualityMetrics]),
      },
      customAttributes: objectOr(stored.customAttributes),
    },
    legacyHistory: schemaVersion === 0 ? legacyTurns(user) : [],
  };
}

/** Today's sections as they are stored (the inverse of fromVersion1). */
export function toStored(sections: ContextSections): StoredSections {
  return {
    userData: sections.user,
    environment: sections.environment,
    modelData: sections.model,
    data: sections.data,
    customAttributes: sections.customAttributes,
  };
}
