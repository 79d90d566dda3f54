import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionTypes } from '../../graphql/pagination';
import { JSONObjectScalar, type JsonObject } from '../../graphql/scalars';
import { Model } from '../model/model.types';
import { User } from '../user/user.entity';

export enum DeploymentEnvironment {
  DEVELOPMENT = 'DEVELOPMENT',
  TEST = 'TEST',
  STAGING = 'STAGING',
  PRODUCTION = 'PRODUCTION',
}
registerEnumType(DeploymentEnvironment, { name: 'DeploymentEnvironment' });

@ObjectType('UserContext')
export class UserContext {
  @Field(() => User)
  user!: User;

  /** Resolves `user` through the per-request loader. */
  userId!: string;

  @Field(() => JSONObjectScalar, { description: 'Encrypted at rest.' })
  preferences!: JsonObject;

  @Field(() => JSONObjectScalar, { nullable: true, description: 'Encrypted at rest.' })
  demographics!: JsonObject | null;
}

@ObjectType('EnvironmentContext')
export class EnvironmentContext {
  @Field(() => Date)
  timestamp!: Date;

  @Field(() => DeploymentEnvironment)
  deploymentEnvironment!: DeploymentEnvironment;

  @Field(() => Float, { description: 'Load of the client-side deployment, 0–1.' })
  serverLoad!: number;

  @Field(() => JSONObjectScalar)
  availableResources!: JsonObject;
}

@ObjectType('ModelContext')
export class ModelContext {
  @Field(() => Model)
  model!: Model;

  /** Resolves `model` through the per-request loader. */
  modelId!: string;

  @Field(() => JSONObjectScalar)
  parameters!: JsonObject;

  @Field(() => JSONObjectScalar)
  constraints!: JsonObject;
}

@ObjectType('DataContext')
export class DataContext {
  @Field(() => String)
  source!: string;

  @Field(() => Date, { nullable: true })
  timestamp!: Date | null;

  @Field(() => JSONObjectScalar)
  qualityMetrics!: JsonObject;
}

@ObjectType('Context', {
  description: 'What a model should know about one use: who, where, which model, which data.',
})
export class Context {
  @Field(() => ID)
  id!: string;

  @Field(() => Int)
  schemaVersion!: number;

  @Field(() => Int, { description: 'Optimistic-concurrency version, +1 on every write.' })
  version!: number;

  @Field(() => UserContext)
  user!: UserContext;

  @Field(() => EnvironmentContext)
  environment!: EnvironmentContext;

  @Field(() => ModelContext)
  model!: ModelContext;

  @Field(() => DataContext)
  data!: DataContext;

  @Field(() => JSONObjectScalar, { description: 'Encrypted at rest.' })
  customAttributes!: JsonObject;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  @Field(() => Date, { nullable: true })
  expiresAt!: Date | null;
}

export const { Edge: ContextEdge, Connection: ContextConnection } = connectionTypes(
  'Context',
  Context,
);

@ObjectType('DeletionReport', { description: 'What a right-to-erasure request removed.' })
export class DeletionReport {
  @Field(() => Int)
  contexts!: number;

  @Field(() => Int)
  historyEntries!: number;

  @Field(() => Boolean)
  user!: boolean;
}

@ObjectType('ErasureReceipt', {
  description: 'Proof that a right-to-erasure request was carried out; holds no personal data.',
})
export class ErasureReceipt {
  @Field(() => ID)
  id!: string;

  @Field(() => ID, {
    description: 'The user who asked (the erased user when they asked themselves).',
  })
  requestedBy!: string;

  @Field(() => Boolean)
  selfRequested!: boolean;

  @Field(() => Int)
  contexts!: number;

  @Field(() => Int)
  historyEntries!: number;

  @Field(() => Boolean)
  userDeleted!: boolean;

  @Field(() => Date)
  createdAt!: Date;
}

export const { Edge: ErasureReceiptEdge, Connection: ErasureReceiptConnection } = connectionTypes(
  'ErasureReceipt',
  ErasureReceipt,
);
