import { Arg, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { JSONObjectScalar, JSONScalar, type JsonObject } from '../../graphql/scalars';
import { toModel } from '../model/model.service';
import { InferenceResult } from './inference.types';

@Resolver()
export class InferResolver {
  @Mutation(() => InferenceResult, {
    description: [
      'Runs a model with a context: the context (yours, or any for admins) adapts the parameters',
      '(creativity → temperature, verbosity → max_tokens, server load caps cost, noisy data lowers',
      'temperature; explicit `parameters` win), recent history and preferences feed the prompt,',
      "formality shapes the answer, and the turn is appended to the context's history. Without",
      'contextId it runs with defaults and writes no history.',
      'Input by task: TEXT_GENERATION "text" | { prompt }; TEXT_CLASSIFICATION "text" | { text };',
      'TENSOR { <input name>: { shape, datatype, data } } as in OIP v2.',
      'Parameters: temperature 0–2, top_k 1–1000, top_p (0,1], max_tokens ≥ 1, seed (same seed,',
      'same output), stop (up to 4 strings), verbose, safety_filter.',
    ].join('\n'),
  })
  async infer(
    @Arg('modelId', () => ID) modelId: string,
    @Arg('input', () => JSONScalar) input: unknown,
    @Arg('contextId', () => ID, { nullable: true }) contextId: string | null,
    @Arg('parameters', () => JSONObjectScalar, { nullable: true }) parameters: JsonObject | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InferenceResult> {
    const outcome = await ctx.services.inference.infer(ctx.user!, {
      modelId,
      input,
      contextId,
      parameters,
    });
    return Object.assign(new InferenceResult(), {
      model: toModel(outcome.model, outcome.executionProvider),
      output: outcome.output,
      parameters: outcome.parameters,
      cached: outcome.cached,
      batchSize: outcome.batchSize,
      executionProvider: outcome.executionProvider,
      latencyMs: outcome.latencyMs,
      historyEntry: outcome.historyEntry,
    });
  }
}
