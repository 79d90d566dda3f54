import { Field, InputType, Int } from 'type-graphql';
import { JSONObjectScalar, type JsonObject } from '../../graphql/scalars';
import { ModelKind, ModelTask, RemoteProtocol } from './model.types';

@InputType('RegisterModelInput')
export class RegisterModelInput {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  version!: string;

  @Field(() => ModelKind)
  kind!: ModelKind;

  @Field(() => ModelTask)
  task!: ModelTask;

  @Field(() => String, { nullable: true })
  description?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "ONNX: a file under the server's model directory.",
  })
  path?: string | null;

  @Field(() => String, { nullable: true, description: 'REMOTE: base URL of the model server.' })
  endpoint?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "REMOTE: the model's name on that server (default: name).",
  })
  remoteName?: string | null;

  @Field(() => RemoteProtocol, { nullable: true, defaultValue: RemoteProtocol.OPEN_INFERENCE_V2 })
  remoteProtocol?: RemoteProtocol | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  defaultParameters?: JsonObject | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false })
  cacheable?: boolean | null;

  @Field(() => Int, { nullable: true })
  cacheTtlSeconds?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Requests per minute; null: the server default.',
  })
  rateLimitPerMinute?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Most requests one model run serves (dynamic batching); 1 turns batching off.',
  })
  maxBatchSize?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'How long (ms) an idle model waits for more requests to batch.',
  })
  maxQueueDelayMs?: number | null;
}
