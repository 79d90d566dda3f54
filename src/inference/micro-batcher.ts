/**
 * Triton-style dynamic batching for one model: requests queue; a batch runs when it reaches
 * `maxBatchSize`, when the oldest request has waited `maxQueueDelayMs`, or at once when a
 * runner frees up and requests are waiting. At most `concurrency` batches run at a time, so
 * under load the queue fills while runners are busy and batches grow by themselves.
 */
export interface BatchOptions {
  /** 1 turns batching off. */
  readonly maxBatchSize: number;
  /** How long the first request of an idle queue waits for company. */
  readonly maxQueueDelayMs: number;
  /** Batches allowed in flight at once (one per worker). */
  readonly concurrency: number;
  /** Requests allowed to wait; past it, submit fails fast instead of queueing forever. */
  readonly maxQueued: number;
}

export interface Batched<O> {
  readonly value: O;
  /** How many requests shared the run that served this one. */
  readonly batchSize: number;
}

/**
 * Answers released per turn of the event loop. Each answer resumes a request that then
 * serializes and writes its response; releasing a batch of 64 at once would hold the event
 * loop for all 64 (tens of ms), so a batch is delivered a few at a time, with timers and
 * other I/O served in between.
 */
const SETTLE_CHUNK = 8;
/** Resolves on the event loop's next turn, after pending I/O and timers have had theirs. */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
}

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: Batched<O>) => void;
  readonly reject: (error: unknown) => void;
}

export class MicroBatcher<I, O> {
  private readonly queue: Pending<I, O>[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: BatchOptions,
    /** Runs one batch; returns one result (or Error) per item, in order. */
    private readonly runBatch: (items: I[]) => Promise<(O | Error)[]>,
    private readonly onBatch?: (size: number) => void,
  ) {}

  /** Requests waiting for a runner. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** Requests queued or running, against how many can run at once: a load figure, 0–1+. */
  get pressure(): number {
    const capacity = this.options.maxBatchSize * this.options.concurrency;
    return (this.queue.length + this.running * this.options.maxBatchSize) / capacity;
  }

  submit(item: I): Promise<Batched<O>> {
    if (this.queue.length >= this.options.maxQueued) {
      return Promise.reject(
        new QueueFullError(`More than ${this.options.maxQueued} requests are waiting`),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running >= this.options.concurrency || this.queue.length === 0) {
      return;
    }
    const full = this.queue.length >= this.options.maxBatchSize;
    if (full || this.options.maxQueueDelayMs === 0 || this.options.maxBatchSize === 1) {
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.maxQueueDelayMs);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatchSize);
      this.running += 1;
      this.onBatch?.(batch.length);
      void this.execute(batch);
    }
  }

  private async execute(batch: Pending<I, O>[]): Promise<void> {
    let outcome: { results: (O | Error)[] } | { error: unknown };
    try {
      outcome = { results: await this.runBatch(batch.map((p) => p.item)) };
    } catch (error) {
      outcome = { error };
    }
    this.running -= 1;
    // The runner is free: whatever queued meanwhile goes now, without waiting for the delay,
    // and runs while this batch's answers are delivered.
    if (this.queue.length > 0) {
      this.flush();
    }
    for (let i = 0; i < batch.length; i += SETTLE_CHUNK) {
      if (i > 0) {
        await nextTurn();
      }
      for (const [k, p] of batch.slice(i, i + SETTLE_CHUNK).entries()) {
        if ('error' in outcome) {
          p.reject(outcome.error);
          continue;
        }
        const result = outcome.results[i + k];
        if (result instanceof Error) {
          p.reject(result);
        } else {
          p.resolve({ value: result as O, batchSize: batch.length });
        }
      }
    }
  }
}
