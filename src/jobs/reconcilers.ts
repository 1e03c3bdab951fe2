import { POLICY_MERGER } from '../domain/changes/change-publisher.ts';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import { mergeFailureOutcome, type GitopsRepository, type MergeAttemptOutcome, type PullRequest } from '../gitops/repository.ts';
import { applyApplicationObservation } from '../domain/application-sync.ts';
import { markPastProgressDeadline } from '../domain/progress-deadline.ts';
import { applyInstanceEvent } from '../domain/instance-events.ts';
import { findChangesOfPullRequest, openPullRequests, recordAutoMergeWaiting } from '../domain/changes/change-requests.ts';
import { recordPullRequestFate, type ChangeOutcome } from '../domain/changes/pull-request-fate.ts';
import { autoMergeError } from '../domain/changes/change-publisher.ts';
import type { Metrics } from '../metrics.ts';
import { ApplicationListError, observationFromApplication, type ApplicationLister, type ApplicationListFailure } from './argocd-applications.ts';
import type { BackgroundTask } from './background-task.ts';
import { runAsLeader } from './leader-lock.ts';
import { createPeriodicTask } from './periodic-task.ts';

/** Arbitrary but fixed: every replica contends for it; the holder reconciles. */
export const RECONCILE_LOCK_KEY = 0x6370_7263; // "cprc"

export interface ReconcileDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'getPullRequest' | 'mergePullRequest' | 'isAncestor'>;
  /** Undefined without a kubeconfig or in-cluster config: Applications are not polled. */
  applications: ApplicationLister | undefined;
  logger: Logger;
  metrics?: Pick<Metrics, 'autoMergeAttempts' | 'argocdApplicationListFailures'>;
  /** Reads the base branch back (convergence): the fallback for lost push webhooks. */
  converge?: () => Promise<unknown>;
  /** Where the PR reconciler's round stands (the last pull request number it read); one per task. */
  pullRequestCursor?: { after: number };
  /** INSTANCE_PROGRESS_DEADLINE_SECONDS; undefined: no deadline is checked. */
  progressDeadlineSeconds?: number;
}

export interface PullRequestReconcileResult {
  checked: number;
  changes: ChangeOutcome[];
  /** Auto-merge pull requests this pass tried to merge, by number, and how that ended. */
  autoMerges: { pullRequest: number; outcome: MergeAttemptOutcome }[];
}

/**
 * The fallback for lost GitHub webhooks: asks the repository about every open change's pull
 * request and records merges and closes the webhook would have. An open pull request of
 * auto-merge changes is merged here when its first merge (right after it was opened) did not
 * go through: each pass tries again until it merges, recording why it did not on the changes
 * (last_error); a conflict stays open for a person. A backend error on one PR is logged and
 * retried next round (it is usually a 5xx or a rate limit), never fatal.
 */
export async function reconcilePullRequests(deps: ReconcileDeps, limit = 200): Promise<PullRequestReconcileResult> {
  // A pass reads at most `limit` pull requests (GitHub's budget) and the next pass goes on from
  // where it stopped, so every open pull request is read within ceil(open / limit) passes:
  // 200 old pull requests nobody merges must not hide a newer one whose webhook was lost.
  const cursor = deps.pullRequestCursor ?? { after: 0 };
  let open = await openPullRequests(deps.sequelize, limit, cursor.after);
  if (open.length === 0 && cursor.after > 0) open = await openPullRequests(deps.sequelize, limit, 0);
  cursor.after = open.length < limit ? 0 : open.at(-1)!.pull_request_number;
  const result: PullRequestReconcileResult = { checked: 0, changes: [], autoMerges: [] };
  for (const { pull_request_number: number, branch, auto_merge: autoMerge } of open) {
    let pr: PullRequest | undefined;
    try {
      pr = await deps.repository.getPullRequest(number);
    } catch (error) {
      deps.logger.warn({ err: error, pullRequest: number }, 'could not read pull request; retrying next round');
      continue;
    }
    result.checked += 1;
    if (pr?.state === 'open' && autoMerge) {
      const attempt = await attemptAutoMerge(deps, number, branch ?? pr.branch);
      result.autoMerges.push({ pullRequest: number, outcome: attempt.outcome });
      if (!attempt.pullRequest) continue;
      pr = attempt.pullRequest;
    }
    if (!pr || pr.state === 'open') continue;
    result.changes.push(...(await recordFate(deps, pr, branch, `reconciler.pull_request.${pr.state}`)));
  }
  return result;
}

/** Merges an open auto-merge pull request; when it does not merge, records why on its open changes. */
async function attemptAutoMerge(deps: ReconcileDeps, number: number, branch: string): Promise<{ outcome: MergeAttemptOutcome; pullRequest?: PullRequest }> {
  try {
    const merged = await deps.repository.mergePullRequest(number, { onlyWhenReady: true, mergedBy: POLICY_MERGER });
    deps.metrics?.autoMergeAttempts.inc({ outcome: 'merged' });
    return { outcome: 'merged', pullRequest: merged };
  } catch (error) {
    const outcome = mergeFailureOutcome(error);
    deps.metrics?.autoMergeAttempts.inc({ outcome });
    const reason = autoMergeError(error);
    const changed = await deps.sequelize.transaction(async (tx) => {
      const changes = (await findChangesOfPullRequest(deps.sequelize, tx, { number, branch })).filter((c) => c.status === 'open');
      return recordAutoMergeWaiting(deps.sequelize, tx, changes, reason);
    });
    // Logged when the reason changes, not on every pass of a pull request that waits for days.
    if (changed > 0) deps.logger[outcome === 'waiting' ? 'info' : 'warn']({ err: error, pullRequest: number, outcome }, 'auto-merge did not merge the pull request; retrying next round');
    return { outcome };
  }
}

async function recordFate(deps: ReconcileDeps, pr: PullRequest, branch: string | null, cause: string): Promise<ChangeOutcome[]> {
  if (pr.state === 'open') return [];
  return deps.sequelize.transaction((tx) =>
    recordPullRequestFate(deps.sequelize, tx, { number: pr.number, branch: branch ?? pr.branch, state: pr.state, mergeCommitSha: pr.mergeCommitSha }, {
      cause,
      actor: 'control-plane',
      detail: { pullRequest: pr.number, url: pr.url },
    }),
  );
}

export interface ApplicationReconcileResult {
  applications: number;
  transitions: Array<{ instanceId: string; event: string; to: string }>;
}

/**
 * The fallback for lost Argo CD notifications: reads every managed Application and applies the
 * same rules as the webhook; an instance being deleted whose Application is no longer listed
 * is deleted. Nothing is concluded from a failed listing.
 */
export async function reconcileApplications(deps: ReconcileDeps & { applications: ApplicationLister }): Promise<ApplicationReconcileResult> {
  const applications = await deps.applications.list();
  const result: ApplicationReconcileResult = { applications: applications.length, transitions: [] };
  const present = new Set<string>();
  // Parents first: an instance's verdict needs both, and the child's word is judged last.
  const observations = applications.map(observationFromApplication).sort((a, b) => tierRank(a) - tierRank(b));
  for (const observation of observations) {
    if (observation.subject?.tier === 'child') present.add(observation.subject.instanceId);
    const outcome = await deps.sequelize.transaction((tx) =>
      applyApplicationObservation(deps, tx, observation, { cause: 'reconciler.argocd', actor: 'control-plane' }),
    );
    if (outcome.instanceId && outcome.event && outcome.to) result.transitions.push({ instanceId: outcome.instanceId, event: outcome.event, to: outcome.to });
  }

  // Removed from main, and Argo CD lists no Application for it: gone.
  const deleting = await deps.sequelize.query<{ id: string; change_id: string | null }>(
    `SELECT i.id, i.last_change_id AS change_id FROM instances i
      WHERE i.state = 'deleting' AND i.observed_state = 'absent' AND i.ever_present`,
    { type: QueryTypes.SELECT },
  );
  for (const { id, change_id: changeId } of deleting) {
    if (present.has(id)) continue;
    const applied = await deps.sequelize.transaction((tx) =>
      applyInstanceEvent(deps.sequelize, tx, id, 'app.gone', { cause: 'reconciler.argocd.gone', actor: 'control-plane', changeId: changeId ?? undefined, detail: { reason: 'no Application is listed for the instance' } }),
    );
    if (applied.ok) result.transitions.push({ instanceId: id, event: 'app.gone', to: applied.to });
  }
  return result;
}

const tierRank = (observation: { subject: { tier: string } | undefined }) => (observation.subject?.tier === 'parent' ? 0 : 1);

/** Both reconcilers, on the leader replica only. */
export async function reconcileOnce(deps: ReconcileDeps) {
  return runAsLeader(deps.sequelize, RECONCILE_LOCK_KEY, async () => ({
    pullRequests: await reconcilePullRequests(deps),
    baseBranch: await deps.converge?.(),
    applications: deps.applications ? await reconcileApplicationsOrSay(deps, deps.applications) : undefined,
    // After the Application pass: an instance it just made ready is not past its deadline.
    pastDeadline: deps.progressDeadlineSeconds ? await markPastProgressDeadline(deps.sequelize, deps.progressDeadlineSeconds) : [],
  }));
}

/**
 * The Application pass, or, when Kubernetes refuses the list (RBAC missing, credentials
 * refused, a list that keeps expiring), a warning that says what to fix and a metric: the
 * webhook path still works, and the rest of the pass (pull requests, main) is not failed.
 */
async function reconcileApplicationsOrSay(deps: ReconcileDeps, applications: ApplicationLister): Promise<ApplicationReconcileResult | { skipped: ApplicationListFailure }> {
  try {
    return await reconcileApplications({ ...deps, applications });
  } catch (error) {
    if (!(error instanceof ApplicationListError)) throw error;
    deps.metrics?.argocdApplicationListFailures.inc({ reason: error.reason });
    deps.logger.warn({ reason: error.reason, status: error.status }, error.message);
    return { skipped: error.reason };
  }
}

export function createReconcilerTask(input: ReconcileDeps & { intervalMs: number }): BackgroundTask {
  const deps = { ...input, pullRequestCursor: input.pullRequestCursor ?? { after: 0 } };
  return createPeriodicTask({
    name: 'reconciler',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      const run = await reconcileOnce(deps);
      if (!run.leader) return;
      const { pullRequests, applications, pastDeadline } = run.result;
      if (pastDeadline.length > 0) deps.logger.warn({ instances: pastDeadline }, 'instances not ready within their progress deadline after their change merged');
      const transitions = applications && 'transitions' in applications ? applications.transitions : [];
      if (pullRequests.changes.length > 0 || transitions.length > 0) {
        deps.logger.info({ pullRequests: pullRequests.changes, applications: transitions }, 'reconciled what webhooks did not report');
      }
    },
  });
}
