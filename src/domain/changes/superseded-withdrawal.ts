import { QueryTypes, type Sequelize } from 'sequelize';
import type { FileChange, GitopsRepository } from '../../gitops/repository.ts';
import { BranchMovedError } from '../../gitops/repository.ts';
import { lockInstances } from '../instance-events.ts';
import { recordPullRequestFate } from './pull-request-fate.ts';
import { WITHDRAWN, type ChangeStatus } from './change-status.ts';

export interface WithdrawalDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'baseBranch' | 'getBranch' | 'readDirectories' | 'createCommit' | 'updateBranch' | 'closePullRequest'>;
}

export interface WithdrawalResult {
  /** Pull requests closed because every change in them was superseded. */
  closed: number[];
  /** Batch pull requests whose branch no longer carries the superseded changes' files. */
  trimmed: number[];
  /** Pull requests a person merged before they could be withdrawn (convergence takes it from there). */
  merged: number[];
}

interface PendingRow {
  pull_request_number: number;
  branch: string;
  changes: { id: string; status: string; superseded_by: string | null; cancelled_by: string | null; instance_id: string | null; files: { path: string; action: string }[] | null }[];
}

/**
 * Withdraws the pull requests of superseded and cancelled changes (an outbox: supersede_pending
 * is set in the transaction that withdrew them). A pull request whose changes are all withdrawn,
 * closed or failed is closed with a comment naming the changes that replaced them or who
 * cancelled them; a batch pull request that still carries live changes has the withdrawn
 * changes' files put back to what the base branch holds, on its branch. Rows are claimed with SKIP LOCKED, so replicas share the work;
 * every step is idempotent (closing a closed pull request, restoring restored files).
 */
export async function withdrawSuperseded(deps: WithdrawalDeps, limit = 10): Promise<WithdrawalResult> {
  const { sequelize } = deps;
  const result: WithdrawalResult = { closed: [], trimmed: [], merged: [] };
  const numbers = await sequelize.query<{ n: number }>(
    `SELECT DISTINCT pull_request_number AS n FROM change_requests
      WHERE supersede_pending AND pull_request_number IS NOT NULL ORDER BY 1 LIMIT $limit`,
    { type: QueryTypes.SELECT, bind: { limit } },
  );
  for (const { n } of numbers) {
    await sequelize.transaction(async (tx) => {
      // Instances before changes, as everywhere (recordPullRequestFate below locks them too):
      // locking the changes first deadlocked with a pull_request delivery of the same PR.
      const instances = await sequelize.query<{ id: string }>(
        'SELECT DISTINCT instance_id AS id FROM change_requests WHERE pull_request_number = $n AND instance_id IS NOT NULL',
        { type: QueryTypes.SELECT, bind: { n }, transaction: tx },
      );
      await lockInstances(sequelize, tx, instances.map((i) => i.id));
      const [row] = await sequelize.query<PendingRow>(
        `SELECT pull_request_number, min(branch) AS branch,
                jsonb_agg(jsonb_build_object('id', id, 'status', status, 'superseded_by', superseded_by, 'cancelled_by', cancelled_by, 'instance_id', instance_id, 'files', files)) AS changes
           FROM (SELECT * FROM change_requests WHERE pull_request_number = $n FOR UPDATE SKIP LOCKED) c
          GROUP BY pull_request_number`,
        { type: QueryTypes.SELECT, bind: { n }, transaction: tx },
      );
      if (!row || !row.changes.some((c) => WITHDRAWN.has(c.status as ChangeStatus))) return;
      const superseded = row.changes.filter((c) => WITHDRAWN.has(c.status as ChangeStatus));
      const live = row.changes.filter((c) => c.status === 'pending' || c.status === 'open');
      if (live.length === 0 && !row.changes.some((c) => c.status === 'merged')) {
        const pr = await deps.repository.closePullRequest(n, `Closed by the control plane: ${superseded.length === 1 ? 'its change was' : 'its changes were'} ${whyWithdrawn(superseded)}.`);
        if (pr.state === 'merged') {
          // A person merged it first: what main holds is read back by convergence.
          await recordPullRequestFate(sequelize, tx, { number: n, branch: row.branch, state: 'merged', mergeCommitSha: pr.mergeCommitSha }, { cause: 'withdrawal.merged', actor: 'control-plane' });
          result.merged.push(n);
        } else {
          result.closed.push(n);
        }
      } else if (live.length > 0) {
        await restoreOnBranch(deps, row.branch, superseded.flatMap((c) => (c.files ?? []).map((f) => f.path)));
        result.trimmed.push(n);
      }
      await sequelize.query('UPDATE change_requests SET supersede_pending = false, updated_at = now() WHERE id = ANY($ids)', {
        bind: { ids: superseded.map((c) => c.id) },
        transaction: tx,
      });
    });
  }
  return result;
}

/** Why the changes left their pull request, for the closing comment. */
function whyWithdrawn(changes: PendingRow['changes']): string {
  const by = [...new Set(changes.flatMap((c) => (c.superseded_by ? [c.superseded_by] : [])))];
  const cancelledBy = [...new Set(changes.flatMap((c) => (c.status === 'cancelled' && c.cancelled_by ? [c.cancelled_by] : [])))];
  const reasons: string[] = [];
  if (by.length > 0) reasons.push(`superseded by a later request (${by.map((id) => `change \`${id}\``).join(', ')})`);
  if (cancelledBy.length > 0) reasons.push(`cancelled by ${cancelledBy.map((s) => `\`${s.replace(/[`\r\n]/g, '')}\``).join(', ')}`);
  // Neither: the instance yielded its name to the one main holds at its path.
  return reasons.length > 0 ? reasons.join('; ') : 'withdrawn: main holds another instance at its path';
}

/** Puts `paths` on `branch` back to what the base branch holds (written, or removed where main lacks them). */
async function restoreOnBranch(deps: WithdrawalDeps, branch: string, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  const base = await deps.repository.getBranch(deps.repository.baseBranch);
  const tip = await deps.repository.getBranch(branch);
  if (!base || !tip) return;
  const dirs = [...new Set(paths.map((p) => p.split('/').slice(0, -1).join('/')))];
  const onMain = new Map<string, string>();
  for (const files of (await deps.repository.readDirectories(base, dirs)).values()) for (const [path, content] of files) onMain.set(path, content);
  const changes: FileChange[] = [...new Set(paths)].sort().map((path) => (onMain.has(path) ? { path, content: onMain.get(path)! } : { path, delete: true }));
  const commit = await deps.repository.createCommit({ parent: tip, changes, message: 'Withdraw superseded or cancelled changes from this batch\n\nThe control plane removed the changes a later request replaced or their requester cancelled.\n' });
  try {
    await deps.repository.updateBranch(branch, commit, { expected: tip });
  } catch (error) {
    // Another replica trimmed it first; the next pass finds nothing left to restore.
    if (!(error instanceof BranchMovedError)) throw error;
  }
}
