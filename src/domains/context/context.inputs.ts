import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { JSONObjectScalar, type JsonObject } from '../../graphql/scalars';
import { DeploymentEnvironment } from './context.types';

@InputType('ContextFilter')
export class ContextFilter {
  @Field(() => ID, { nullable: true, description: 'Admins only: contexts of this user.' })
  userId?: string | null;

  @Field(() => ID, { nullable: true })
  modelId?: string | null;

  @Field(() => Date, { nullable: true })
  updatedSince?: Date | null;
}

@InputType('UserContextInput')
export class UserContextInput {
  @Field(() => JSONObjectScalar, { nullable: true })
  preferences?: JsonObject | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  demographics?: JsonObject | null;
}

@InputType('EnvironmentContextInput')
export class EnvironmentContextInput {
  @Field(() => Date, { nullable: true })
  timestamp?: Date | null;

  @Field(() => DeploymentEnvironment, { nullable: true })
  deploymentEnvironment?: DeploymentEnvironment | null;

  @Field(() => Float, { nullable: true, description: '0–1.' })
  serverLoad?: number | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  availableResources?: JsonObject | null;
}

@InputType('ModelContextInput')
export class ModelContextInput {
  @Field(() => ID)
  modelId!: string;

  @Field(() => JSONObjectScalar, { nullable: true })
  parameters?: JsonObject | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  constraints?: JsonObject | null;
}

@InputType('DataContextInput')
export class DataContextInput {
  @Field(() => String, { nullable: true })
  source?: string | null;

  @Field(() => Date, { nullable: true })
  timestamp?: Date | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  qualityMetrics?: JsonObject | null;
}

@InputType('CreateContextInput')
export class CreateContextInput {
  @Field(() => ID, {
    nullable: true,
    description: 'Admins may create for another user; default: the caller.',
  })
  userId?: string | null;

  @Field(() => UserContextInput, { nullable: true })
  user?: UserContextInput | null;

  @Field(() => EnvironmentContextInput, { nullable: true })
  environment?: EnvironmentContextInput | null;

  @Field(() => ModelContextInput)
  model!: ModelContextInput;

  @Field(() => DataContextInput, { nullable: true })
  data?: DataContextInput | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  customAttributes?: JsonObject | null;

  @Field(() => Int, { nullable: true, description: 'null: the server default.' })
  ttlSeconds?: number | null;
}

@InputType('UpdateContextInput', {
  description: 'Each section given replaces that section; sections left out stay as they are.',
})
export class UpdateContextInput {
  @Field(() => UserContextInput, { nullable: true })
  user?: UserContextInput | null;

  @Field(() => EnvironmentContextInput, { nullable: true })
  environment?: EnvironmentContextInput | null;

  @Field(() => ModelContextInput, { nullable: true })
  model?: ModelContextInput | null;

  @Field(() => DataContextInput, { nullable: true })
  data?: DataContextInput | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  customAttributes?: JsonObject | null;

  @Field(() => Int, { nullable: true })
  ttlSeconds?: number | null;
}

@InputType('ContextUpdate')
export class ContextUpdate {
  @Field(() => ID)
  id!: string;

  @Field(() => UpdateContextInput)
  patch!: UpdateContextInput;

  @Field(() => Int, { nullable: true })
  expectedVersion?: number | null;
}
