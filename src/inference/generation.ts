import { nextTurn } from './micro-batcher';
import { createRng, sampleToken } from './sampling';
import { type EffectiveParameters } from './types';

export type FinishReason = 'length' | 'stop' | 'end';

export interface Generated {
  readonly tokens: number[];
  readonly finishReason: FinishReason;
  /** The most sequences that shared one decoding step with this one. */
  readonly batchSize: number;
}

export interface GenerationOptions {
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly contextLength: number;
  readonly padId: number;
  readonly endId?: number;
  /** Ids never sampled (padding, unknown). */
  readonly exclude: ReadonlySet<number>;
  readonly decode: (ids: readonly number[]) => string;
}

interface Sequence {
  readonly context: number[];
  readonly generated: number[];
  readonly parameters: EffectiveParameters;
  readonly stop: readonly string[];
  readonly rng: () => number;
  batchSize: number;
  readonly resolve: (g: Generated) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Continuous batching for autoregressive models: every decoding step runs the next token of
 * all active sequences in one model call, and new requests join at the next step instead of
 * waiting for a batch to finish. Each sequence has its own seeded generator, so its output is
 * the same whichever sequences it shares steps with.
 */
export class GenerationScheduler {
  private readonly waiting: Sequence[] = [];
  private readonly active: Sequence[] = [];
  private looping = false;

  constructor(
    private readonly options: GenerationOptions,
    /** One decoding step: `[batch][contextLength]` token ids → one logits row per sequence. */
    private readonly step: (contexts: number[][]) => Promise<Float32Array[]>,
    private readonly onStep?: (size: number) => void,
  ) {}

  get queueDepth(): number {
    return this.waiting.length;
  }

  get pressure(): number {
    return (this.waiting.length + this.active.length) / this.options.maxBatchSize;
  }

  generate(promptIds: readonly number[], parameters: EffectiveParameters): Promise<Generated> {
    return new Promise((resolve, reject) => {
      this.waiting.push({
        context: [...promptIds],
        generated: [],
        parameters,
        stop: Array.isArray(parameters.stop) ? (parameters.stop as string[]) : [],
        rng: createRng(parameters.seed ?? Math.floor(Math.random() * 2 ** 31)),
        batchSize: 0,
        resolve,
        reject,
      });
      if (!this.looping) {
        this.looping = true;
        // An idle model waits briefly so concurrent arrivals share their first steps.
        setTimeout(() => void this.loop(), this.options.maxQueueDelayMs);
      }
    });
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        while (this.active.length < this.options.maxBatchSize && this.waiting.length > 0) {
          this.active.push(this.waiting.shift()!);
        }
        if (this.active.length === 0) {
          return;
        }
        const batch = [...this.active];
        let logits: Float32Array[];
        try {
          logits = await this.step(batch.map((s) => this.window(s.context)));
        } catch (error) {
          for (const s of batch) {
            this.finish(s, undefined, error);
          }
          continue;
        }
        this.onStep?.(batch.length);
        batch.forEach((s, i) => {
          s.batchSize = Math.max(s.batchSize, batch.length);
          const token = sampleToken(logits[i]!, s.parameters, s.rng, this.options.exclude);
          s.context.push(token);
          s.generated.push(token);
          if (token === this.options.endId) {
            s.generated.pop();
            this.finish(s, 'end');
          } else if (
            s.stop.length &&
            s.stop.some((w) => this.options.decode(s.generated).endsWith(w))
          ) {
            this.finish(s, 'stop');
          } else if (s.generated.length >= s.parameters.max_tokens) {
            this.finish(s, 'length');
          }
        });
        // Let other work (GraphQL requests, new arrivals) run between steps.
        await nextTurn();
      }
    } finally {
      this.looping = false;
      if (this.waiting.length > 0) {
        this.looping = true;
        void this.loop();
      }
    }
  }

  private window(context: readonly number[]): number[] {
    const n = this.options.contextLength;
    const tail = context.slice(-n);
    return [...Array<number>(n - tail.length).fill(this.options.padId), ...tail];
  }

  private finish(s: Sequence, reason?: FinishReason, error?: unknown): void {
    this.active.splice(this.active.indexOf(s), 1);
    if (error !== undefined || !reason) {
      s.reject(error);
    } else {
      s.resolve({ tokens: s.generated, finishReason: reason, batchSize: s.batchSize });
    }
  }
}
