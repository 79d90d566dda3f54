import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { connectionTypes } from '../../graphql/pagination';
import { JSONObjectScalar, JSONScalar, type JsonObject } from '../../graphql/scalars';
import { Model } from '../model/model.types';

@ObjectType('HistoryEntry', { description: 'One inference turn recorded in a context.' })
export class HistoryEntry {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  contextId!: string;

  @Field(() => Int, { description: '1, 2, 3 … per context, gapless, assigned by the server.' })
  sequence!: number;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Model)
  model!: Model;

  /** Resolves `model` through the per-request loader. */
  modelId!: string;

  @Field(() => JSONScalar)
  input!: unknown;

  @Field(() => JSONScalar)
  output!: unknown;

  @Field(() => JSONObjectScalar, {
    description: 'The effective parameters after context adaptation.',
  })
  parameters!: JsonObject;

  @Field(() => Float)
  latencyMs!: number;
}

export const { Edge: HistoryEdge, Connection: HistoryConnection } = connectionTypes(
  'History',
  HistoryEntry,
);
