import { type SerializedContextRow } from '../../realtime/topics';
import { type JsonObject } from '../../graphql/scalars';
import { ContextEntity } from './context.entity';

/** A raw `contexts` row (snake_case, from `SELECT *`) as an entity. */
export function contextFromRow(raw: Record<string, unknown>): ContextEntity {
  return Object.assign(new ContextEntity(), {
    id: raw.id as string,
    userId: raw.user_id as string,
    modelId: raw.model_id as string,
    schemaVersion: Number(raw.schema_version),
    version: Number(raw.version),
    lastSequence: Number(raw.last_sequence),
    userData: raw.user_data as Buffer,
    environment: raw.environment as JsonObject,
    modelData: raw.model_data as JsonObject,
    data: raw.data as JsonObject,
    customAttributes: raw.custom_attributes as Buffer,
    ttlSeconds: raw.ttl_seconds === null ? null : Number(raw.ttl_seconds),
    createdAt: new Date(raw.created_at as string | Date),
    updatedAt: new Date(raw.updated_at as string | Date),
    expiresAt: new Date(raw.expires_at as string | Date),
  });
}

/** For the cache and pub/sub: the stored form, ciphertexts included, never plaintext. */
export function serializeContext(row: ContextEntity): SerializedContextRow {
  return {
    id: row.id,
    user_id: row.userId,
    model_id: row.modelId,
    schema_version: row.schemaVersion,
    version: row.version,
    last_sequence: row.lastSequence,
    user_data: row.userData.toString('base64'),
    environment: JSON.stringify(row.environment),
    model_data: JSON.stringify(row.modelData),
    data: JSON.stringify(row.data),
    custom_attributes: row.customAttributes.toString('base64'),
    ttl_seconds: row.ttlSeconds,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    expires_at: row.expiresAt.toISOString(),
  };
}

export function deserializeContext(s: SerializedContextRow): ContextEntity {
  return contextFromRow({
    ...s,
    user_data: Buffer.from(String(s.user_data), 'base64'),
    custom_attributes: Buffer.from(String(s.custom_attributes), 'base64'),
    environment: JSON.parse(String(s.environment)),
    model_data: JSON.parse(String(s.model_data)),
    data: JSON.parse(String(s.data)),
  });
}

/** Orders cached versions: a client write bumps `version`, a schema upgrade `schemaVersion`. */
export const stampOf = (row: ContextEntity) => row.version * 1000 + row.schemaVersion;
