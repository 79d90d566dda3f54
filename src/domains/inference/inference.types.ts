import { Field, Float, Int, ObjectType } from 'type-graphql';
import { JSONObjectScalar, JSONScalar, type JsonObject } from '../../graphql/scalars';
import { HistoryEntry } from '../history/history.types';
import { Model } from '../model/model.types';

@ObjectType('InferenceResult', {
  description: [
    'infer input and output, by task:',
    '  TEXT_GENERATION      input "text" | { prompt }        → output { text, finishReason, tokens }',
    '  TEXT_CLASSIFICATION  input "text" | { text }          → output { label, scores: { <label>: probability } }',
    '  TENSOR               input { <name>: { shape, datatype, data } } → output { <name>: { shape, datatype, data } }',
  ].join('\n'),
})
export class InferenceResult {
  @Field(() => Model)
  model!: Model;

  @Field(() => JSONScalar)
  output!: unknown;

  @Field(() => JSONObjectScalar, { description: 'Effective parameters after context adaptation.' })
  parameters!: JsonObject;

  @Field(() => Boolean)
  cached!: boolean;

  @Field(() => Int, { description: 'How many requests shared the model run that served this one.' })
  batchSize!: number;

  @Field(() => String)
  executionProvider!: string;

  @Field(() => Float)
  latencyMs!: number;

  @Field(() => HistoryEntry, { nullable: true, description: 'null when no contextId was given.' })
  historyEntry!: HistoryEntry | null;
}
