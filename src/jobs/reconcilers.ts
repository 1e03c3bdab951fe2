import { QueryTypes, type Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import type { GitopsRepository, PullRequest } from '../gitops/repository.ts';
import { applyApplicationObservation } from '../domain/application-sync.ts';
import { applyInstanceEvent } from '../domain/instance-events.ts';
import { findChangesOfPullRequest, recordChangeClosed, recordChangeMerged, type ChangeOutcome } from '../domain/change-outcomes.ts';
import { observationFromApplication, type ApplicationLister } from './argocd-applications.ts';
import type { BackgroundTask } from './background-task.ts';
import { runAsLeader } from './leader-lock.ts';
import { createPeriodicTask } from './periodic-task.ts';

/** Arbitrary but fixed: every replica contends for it; the holder reconciles. */
export const RECONCILE_LOCK_KEY = 0x6370_7263; // "cprc"

export interface ReconcileDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'getPullRequest' | 'isAncestor'>;
  /** Undefined without a kubeconfig or in-cluster config: Applications are not polled. */
  applications: ApplicationLister | undefined;
  logger: Logger;
}

export interface PullRequestReconcileResult {
  checked: number;
  changes: ChangeOutcome[];
}

/**
 * The fallback for lost GitHub webhooks: asks the repository about every open change's pull
 * request and records merges and closes the webhook would have. A backend error on one PR is
 * logged and retried next round (it is usually a 5xx or a rate limit), never fatal.
 */
export async function reconcilePullRequests(deps: ReconcileDeps, limit = 200): Promise<PullRequestReconcileResult> {
  const open = await deps.sequelize.query<{ pull_request_number: number; branch: string | null }>(
    `SELECT DISTINCT pull_request_number, branch FROM change_requests
      WHERE status = 'open' AND pull_request_number IS NOT NULL ORDER BY pull_request_number LIMIT $limit`,
    { type: QueryTypes.SELECT, bind: { limit } },
  );
  const result: PullRequestReconcileResult = { checked: 0, changes: [] };
  for (const { pull_request_number: number, branch } of open) {
    let pr: PullRequest | undefined;
    try {
      pr = await deps.repository.getPullRequest(number);
    } catch (error) {
      deps.logger.warn({ err: error, pullRequest: number }, 'could not read pull request; retrying next round');
      continue;
    }
    result.checked += 1;
    if (!pr || pr.state === 'open') continue;
    const merged = pr.state === 'merged' && pr.mergeCommitSha ? pr.mergeCommitSha : undefined;
    const outcomes = await deps.sequelize.transaction(async (tx) => {
      const cause = { cause: `reconciler.pull_request.${pr.state}`, actor: 'control-plane', detail: { pullRequest: number, url: pr.url } };
      const out: ChangeOutcome[] = [];
      for (const change of await findChangesOfPullRequest(deps.sequelize, tx, { number, branch: branch ?? pr.branch })) {
        if (change.status !== 'open') continue;
        out.push(merged ? await recordChangeMerged(deps.sequelize, tx, change, { mergeCommitSha: merged, authoritative: true }, cause) : await recordChangeClosed(deps.sequelize, tx, change, cause));
      }
      return out;
    });
    result.changes.push(...outcomes);
  }
  return result;
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
  for (const application of applications) {
    const observation = observationFromApplication(application);
    if (observation.instanceId) present.add(observation.instanceId);
    const outcome = await deps.sequelize.transaction((tx) =>
      applyApplicationObservation(deps, tx, observation, { cause: 'reconciler.argocd', actor: 'control-plane' }),
    );
    if (outcome.instanceId && outcome.event && outcome.to) result.transitions.push({ instanceId: outcome.instanceId, event: outcome.event, to: outcome.to });
  }

  const deleting = await deps.sequelize.query<{ id: string; change_id: string }>(
    `SELECT i.id, c.id AS change_id FROM instances i JOIN change_requests c ON c.id = i.last_change_id
      WHERE i.state = 'deleting' AND i.desired_state = 'absent' AND c.status = 'merged'`,
    { type: QueryTypes.SELECT },
  );
  for (const { id, change_id: changeId } of deleting) {
    if (present.has(id)) continue;
    const applied = await deps.sequelize.transaction((tx) =>
      applyInstanceEvent(deps.sequelize, tx, id, 'app.gone', { cause: 'reconciler.argocd.gone', actor: 'control-plane', changeId, detail: { reason: 'no Application is listed for the instance' } }),
    );
    if (applied.ok) result.transitions.push({ instanceId: id, event: 'app.gone', to: applied.to });
  }
  return result;
}

/** Both reconcilers, on the leader replica only. */
export async function reconcileOnce(deps: ReconcileDeps) {
  return runAsLeader(deps.sequelize, RECONCILE_LOCK_KEY, async () => ({
    pullRequests: await reconcilePullRequests(deps),
    applications: deps.applications ? await reconcileApplications({ ...deps, applications: deps.applications }) : undefined,
  }));
}

export function createReconcilerTask(deps: ReconcileDeps & { intervalMs: number }): BackgroundTask {
  return createPeriodicTask({
    name: 'reconciler',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      const run = await reconcileOnce(deps);
      if (!run.leader) return;
      const { pullRequests, applications } = run.result;
      if (pullRequests.changes.length > 0 || (applications?.transitions.length ?? 0) > 0) {
        deps.logger.info({ pullRequests: pullRequests.changes, applications: applications?.transitions }, 'reconciled what webhooks did not report');
      }
    },
  });
}
