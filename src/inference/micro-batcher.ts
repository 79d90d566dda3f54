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
    try {
      const results = await this.runBatch(batch.map((p) => p.item));
      batch.forEach((p, i) => {
        const result = results[i];
        if (result instanceof Error) {
          p.reject(result);
        } else {
          p.resolve({ value: result as O, batchSize: batch.length });
        }
      });
    } catch (error) {
      for (const p of batch) {
        p.reject(error);
      }
    } finally {
      this.running -= 1;
      // A runner is free: whatever queued meanwhile goes now, without waiting for the delay.
      if (this.queue.length > 0) {
        this.flush();
      }
    }
  }
}
