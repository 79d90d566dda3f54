import { type Logger } from '../../ops/logger';
import { type ContextService } from './context.service';

/**
 * Deletes expired contexts every `intervalMs`. Safe with several replicas: the delete skips
 * rows another replica holds. A failed sweep is logged and retried at the next tick.
 */
export function startSweeper(
  contexts: ContextService,
  intervalMs: number,
  logger: Logger,
  onDeleted: (count: number) => void,
): () => Promise<void> {
  if (intervalMs === 0) {
    return async () => undefined;
  }
  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= contexts
      .sweepExpired()
      .then((count) => {
        if (count > 0) {
          onDeleted(count);
          logger.info({ deleted: count }, 'expired contexts deleted');
        }
      })
      .catch((err: unknown) => logger.warn({ err }, 'context sweep failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(sweep, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
