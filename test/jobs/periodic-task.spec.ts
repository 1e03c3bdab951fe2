import assert from 'node:assert/strict';
import { createLogger } from '../../src/logger.ts';
import { createPeriodicTask } from '../../src/jobs/periodic-task.ts';

describe('periodic task', () => {
  it('runs again after a failed run, never overlaps, and stop() waits for the run in flight', async () => {
    let running = 0;
    let overlapped = false;
    let runs = 0;
    let finishThird!: () => void;
    const thirdStarted = Promise.withResolvers<void>();
    const task = createPeriodicTask({
      name: 'test',
      intervalMs: 1,
      logger: createLogger('silent'),
      run: async () => {
        runs += 1;
        running += 1;
        if (running > 1) overlapped = true;
        try {
          if (runs === 1) throw new Error('first run fails');
          if (runs === 3) {
            thirdStarted.resolve();
            await new Promise<void>((resolve) => (finishThird = resolve));
          }
        } finally {
          running -= 1;
        }
      },
    });
    task.start();
    await thirdStarted.promise;

    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'stop() returned while a run was in flight');
    finishThird();
    await stopping;
    // Give a wrongly scheduled next run the chance to happen.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(runs, 3, 'a run started after stop()');
    assert.equal(overlapped, false);
  });
});
