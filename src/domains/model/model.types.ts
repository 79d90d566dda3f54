import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { JSONObjectScalar, type JsonObject } from '../../graphql/scalars';

export enum ModelKind {
  ONNX = 'ONNX',
  REMOTE = 'REMOTE',
}
export enum ModelTask {
  TEXT_GENERATION = 'TEXT_GENERATION',
  TEXT_CLASSIFICATION = 'TEXT_CLASSIFICATION',
  TENSOR = 'TENSOR',
}
export enum RemoteProtocol {
  OPEN_INFERENCE_V2 = 'OPEN_INFERENCE_V2',
  TFSERVING_V1 = 'TFSERVING_V1',
}
registerEnumType(ModelKind, {
  name: 'ModelKind',
  description: 'ONNX: run in-process with onnxruntime; REMOTE: served by another model server.',
});
registerEnumType(ModelTask, { name: 'ModelTask' });
registerEnumType(RemoteProtocol, {
  name: 'RemoteProtocol',
  description:
    'OPEN_INFERENCE_V2: KServe/Triton v2 REST; TFSERVING_V1: TF Serving / KServe v1 ":predict".',
});

@ObjectType('TensorSpec')
export class TensorSpec {
  @Field(() => String)
  name!: string;

  @Field(() => String, { description: 'Element type, e.g. "float32", "int64".' })
  type!: string;

  @Field(() => [Int], { description: '-1 for a dynamic dimension.' })
  dims!: number[];
}

@ObjectType('Model')
export class Model {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { description: 'Unique together with version.' })
  name!: string;

  @Field(() => String)
  version!: string;

  @Field(() => ModelKind)
  kind!: ModelKind;

  @Field(() => ModelTask)
  task!: ModelTask;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => [TensorSpec])
  inputs!: TensorSpec[];

  @Field(() => [TensorSpec])
  outputs!: TensorSpec[];

  @Field(() => JSONObjectScalar)
  defaultParameters!: JsonObject;

  @Field(() => Boolean)
  cacheable!: boolean;

  @Field(() => Int, { nullable: true })
  cacheTtlSeconds!: number | null;

  @Field(() => Int, { nullable: true, description: 'null: the server default.' })
  rateLimitPerMinute!: number | null;

  @Field(() => String, {
    nullable: true,
    description:
      'Provider actually in use once loaded ("cuda", "cpu"); null before first load or for REMOTE.',
  })
  executionProvider!: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'REMOTE only; visible to MODEL_DEVELOPER and ADMIN.',
  })
  endpoint!: string | null;

  @Field(() => RemoteProtocol, { nullable: true, description: 'REMOTE only.' })
  remoteProtocol!: RemoteProtocol | null;

  @Field(() => Date)
  createdAt!: Date;
}
