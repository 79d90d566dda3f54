import { type ContextRecord } from './context.service';
import {
  Context,
  DataContext,
  EnvironmentContext,
  ModelContext,
  UserContext,
} from './context.types';

/** A decrypted context record as the GraphQL object types. */
export function toContext(record: ContextRecord): Context {
  const { user, environment, model, data, customAttributes } = record.sections;
  return Object.assign(new Context(), {
    id: record.id,
    schemaVersion: record.schemaVersion,
    version: record.version,
    user: Object.assign(new UserContext(), { userId: record.userId, ...user }),
    environment: Object.assign(new EnvironmentContext(), {
      ...environment,
      timestamp: new Date(environment.timestamp),
    }),
    model: Object.assign(new ModelContext(), { modelId: record.modelId, ...model }),
    data: Object.assign(new DataContext(), {
      ...data,
      timestamp: data.timestamp ? new Date(data.timestamp) : null,
    }),
    customAttributes,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    expiresAt: record.expiresAt,
  });
}
