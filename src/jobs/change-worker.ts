import { randomUUID } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import { claimBatch, recordFailed, recordPublished, recordRetry, type ClaimedBatch } from '../domain/changes/change-queue.ts';
import { publishChanges } from '../domain/changes/change-publisher.ts';
import type { BatchCommitMode } from '../domain/changes/change-kinds.ts';
import { withdrawSuperseded, type WithdrawalResult } from '../domain/changes/superseded-withdrawal.ts';
import { deleteMergedBranches } from '../domain/changes/merged-branches.ts';
import type { TemplateCatalog } from '../gitops/render/template-catalog.ts';
import { BackendRateLimitedError, RepositoryRejectedError, type GitopsRepository } from '../gitops/repository.ts';
import type { BackgroundTask } from './background-task.ts';
import type { Metrics } from '../metrics.ts';

export interface ChangeWorkerOptions {
  sequelize: Sequelize;
  repository: GitopsRepository;
  catalog: TemplateCatalog;
  logger: Logger;
  /** Batching window: a change waits this long so close arrivals share one commit and PR. */
  windowMs: number;
  maxBatch: number;
  /** GITOPS_BATCH_COMMITS (default per-org-commits). */
  batchCommits?: BatchCommitMode;
  /** With per-org commits: most orgs in one batch (the github driver: what the write budget's burst pays for). */
  maxOrgsPerBatch?: number;
  leaseMs: number;
  /** Sleep between polls of an empty queue. */
  pollMs: number;
  /** After this many attempts a transient error becomes terminal. */
  maxAttempts: number;
  workerId?: string;
  metrics?: Pick<Metrics, 'autoMergeAttempts' | 'gitopsRateLimited'>;
  /** Called after a batch reached the base branch (direct, or auto-merged): read main back. */
  afterLanding?: () => Promise<unknown>;
  /**
   * The backend's write budget (github driver): no batch is claimed before it can pay for one,
   * so while it is short the queue grows and the next batch carries more changes.
   */
  budget?: { readyIn(writes?: number): Promise<number>; clock: { realMs(ms: number): number } };
}

/** 1 s, 2 s, 4 s, ... capped at 5 min, with ±20 % jitter so retries of many workers spread out. */
/** How often an idle worker looks for branches of merged changes to delete. */
const BRANCH_CLEANUP_MS = 30_000;

export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(300_000, 1_000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Drains the change_requests outbox: claims a batch, publishes it to Git, records the result.
 * Errors the repository calls terminal (RepositoryRejectedError) fail the batch's changes with
 * the reason; any other error is transient and the batch is retried with backoff. stop() lets
 * the batch in flight finish, then resolves.
 */
export function createChangeWorker(options: ChangeWorkerOptions): BackgroundTask & { runOnce(): Promise<boolean>; withdrawOnce(): Promise<WithdrawalResult> } {
  const workerId = options.workerId ?? `worker-${randomUUID()}`;
  const log = options.logger.child({ task: 'change-worker', workerId });
  let stopping = false;
  let branchesCleanedAt = 0;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  /** Real time before which the budget cannot pay for a batch. */
  let budgetReadyAt = 0;

  async function runOnce(): Promise<boolean> {
    if (options.budget) {
      const wait = options.budget.clock.realMs(await options.budget.readyIn());
      budgetReadyAt = Date.now() + wait;
      if (wait > 0) return false;
    }
    const batch = await claimBatch(options.sequelize, { workerId, leaseMs: options.leaseMs, windowMs: options.windowMs, maxBatch: options.maxBatch,
      perOrg: options.batchCommits === 'per-org-pull-requests',
      ...(options.maxOrgsPerBatch !== undefined && (options.batchCommits ?? 'per-org-commits') === 'per-org-commits' ? { maxOrgs: options.maxOrgsPerBatch } : {}),
    });
    if (!batch) return false;
    await publishBatch(batch);
    return true;
  }

  async function publishBatch(batch: ClaimedBatch): Promise<void> {
    const started = Date.now();
    try {
      const result = await publishChanges(options.repository, options.catalog, { ...batch, commits: options.batchCommits === 'shared' ? 'shared' : 'per-org' });
      await recordPublished(options.sequelize, batch, result);
      if (result.autoMerge) options.metrics?.autoMergeAttempts.inc({ outcome: result.autoMerge });
      if (result.mergeCommitSha) await options.afterLanding?.().catch((error: unknown) => log.warn({ err: error }, 'could not read the base branch back; the reconciler will'));
      log.info(
        { batchId: batch.batchId, changes: result.published.length, rejected: result.rejected.length, commit: result.commitSha, pullRequest: result.pullRequest?.url, ms: Date.now() - started },
        'change batch published',
      );
    } catch (error) {
      const reason = (error as Error).message;
      const attempts = Math.max(...batch.changes.map((c) => c.attempts));
      if (error instanceof BackendRateLimitedError) {
        // Not the change's fault: it waits out the limit, and no wait counts towards failing it.
        const delay = Math.max(1_000, error.retryAt.getTime() - Date.now());
        log.warn({ batchId: batch.batchId, retryInMs: delay }, 'change batch waits for the backend rate limit');
        options.metrics?.gitopsRateLimited.inc();
        await recordRetry(options.sequelize, batch, reason, delay, { refundAttempt: true });
      } else if (error instanceof RepositoryRejectedError || attempts >= options.maxAttempts) {
        log.warn({ batchId: batch.batchId, err: error, attempts }, 'change batch failed');
        await recordFailed(options.sequelize, batch, batch.changes.map((c) => c.id), reason);
      } else {
        const delay = backoffMs(attempts);
        log.warn({ batchId: batch.batchId, err: error, attempts, retryInMs: delay }, 'change batch will be retried');
        await recordRetry(options.sequelize, batch, reason, delay);
      }
    }
  }

  /** Closes or trims the pull requests of superseded changes (see withdrawSuperseded). */
  async function withdrawOnce(): Promise<WithdrawalResult> {
    const result = await withdrawSuperseded({ sequelize: options.sequelize, repository: options.repository });
    if (result.closed.length + result.trimmed.length + result.merged.length > 0) log.info(result, 'withdrew superseded changes');
    return result;
  }

  async function run(): Promise<void> {
    while (!stopping) {
      let worked = false;
      try {
        worked = await runOnce();
        // Idle: withdraw what later requests superseded (an outbox of its own), then delete
        // the branches of merged changes.
        if (!worked) {
          await withdrawOnce();
          // Not urgent: at most once per BRANCH_CLEANUP_MS, not on every idle poll (4 a second),
          // and only with write budget to spare (changes first).
          if (Date.now() - branchesCleanedAt >= BRANCH_CLEANUP_MS && budgetReadyAt <= Date.now()) {
            branchesCleanedAt = Date.now();
            const deleted = await deleteMergedBranches({ sequelize: options.sequelize, repository: options.repository });
            if (deleted.length > 0) log.info({ branches: deleted }, 'deleted the branches of merged changes');
          }
        }
      } catch (error) {
        if (error instanceof BackendRateLimitedError) log.info({ retryAt: error.retryAt }, 'idle work waits for the backend rate limit');
        else log.error({ err: error }, 'change worker could not claim work');
      }
      if (worked || stopping) continue;
      // While the budget is short, sleep until it can pay for a batch (a new change cannot
      // make that sooner); otherwise poll.
      const sleepMs = Math.max(options.pollMs, Math.min(budgetReadyAt - Date.now(), 60_000));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  }

  return {
    name: 'change-worker',
    runOnce,
    withdrawOnce,
    start() {
      loop ??= run();
    },
    async stop() {
      stopping = true;
      wake?.();
      await loop;
    },
  };
}
