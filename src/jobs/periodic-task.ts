import type { Logger } from '../logger.ts';
import type { BackgroundTask } from './background-task.ts';

/**
 * A BackgroundTask that calls `run` every `intervalMs` (measured from the end of one run to the
 * start of the next, so runs never overlap). A failed run is logged and the next one comes as
 * planned. stop() cancels the next run and waits for the current one.
 */
export function createPeriodicTask(options: { name: string; intervalMs: number; logger: Logger; run: () => Promise<void> }): BackgroundTask {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = false;

  const tick = () => {
    current = options
      .run()
      .catch((error: unknown) => options.logger.error({ err: error, task: options.name }, 'background task run failed'))
      .finally(() => {
        current = undefined;
        if (!stopped) timer = setTimeout(tick, options.intervalMs);
      });
  };

  return {
    name: options.name,
    start() {
      stopped = false;
      timer = setTimeout(tick, 0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
