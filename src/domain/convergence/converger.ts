import { convergeToBaseBranch, type BaseBranchMove, type ConvergenceDeps, type ConvergenceResult } from './base-branch-convergence.ts';

export interface Converger {
  /**
   * Reads the base branch back now; concurrent calls share a run, and a call during a run gets
   * one more after it. `move` (a push delivery's commits) saves the compare call when it starts
   * where the last read ended; otherwise it is ignored.
   */
  converge(move?: BaseBranchMove): Promise<ConvergenceResult | undefined>;
}

/**
 * One converger per process: every trigger (our own merges, push and pull_request webhooks,
 * the reconciler) goes through it, so at most one read of main runs here at a time and a
 * trigger that arrives during a run is never lost (it runs once more after). Across replicas
 * the head compare-and-swap in convergeToBaseBranch keeps runs from applying twice.
 */
export function createConverger(deps: ConvergenceDeps & { onResult?: (result: ConvergenceResult) => void }): Converger {
  let running: Promise<ConvergenceResult | undefined> | undefined;
  let again: Promise<ConvergenceResult | undefined> | undefined;
  const runOnce = async (move?: BaseBranchMove): Promise<ConvergenceResult | undefined> => {
    const result = await convergeToBaseBranch(deps, move);
    if (result) deps.onResult?.(result);
    return result;
  };
  const converge = (move?: BaseBranchMove): Promise<ConvergenceResult | undefined> => {
    if (!running) {
      running = runOnce(move).finally(() => {
        running = undefined;
      });
      return running;
    }
    again ??= running
      .catch(() => undefined)
      .then(() => {
        again = undefined;
        return converge();
      });
    return again;
  };
  return { converge };
}
