import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * The replica's own load, 0–1: event-loop utilisation over the last interval. The adapter
 * takes the larger of this, the model's queue pressure and the context's serverLoad, so
 * the server degrades gracefully under real pressure.
 */
export class LoadMonitor {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private utilisation = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 1_000) {
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.utilisation = performance.eventLoopUtilization(now, this.last).utilization;
      this.last = now;
    }, intervalMs);
    this.timer.unref();
  }

  /** Load for a model with the given queue pressure (queued + running against capacity). */
  load(pressure = 0): number {
    return Math.min(1, Math.max(this.utilisation, pressure));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
