import { QueryTypes, type Sequelize } from 'sequelize';
import { ConflictError, NotFoundError } from '../../errors.ts';
import { PullRequestNotMergeableError, RepositoryRejectedError, type GitopsRepository, type PullRequest } from '../../gitops/repository.ts';
import { recordPullRequestFate } from './pull-request-fate.ts';
import { personLine } from './change-publisher.ts';

export interface MergedChange {
  id: string;
  pullRequestNumber: number;
  mergeCommitSha: string;
  /** Every change of the pull request (a batch shares one). */
  changeIds: string[];
}

/**
 * Merges the pull request of an open change, as a reviewer would, and records the merge on
 * every change of that pull request (a batch shares one): status merged, merge_commit_sha,
 * and 'change.merged' for each instance. Merging twice answers with the first merge.
 */
export async function mergeChange(
  deps: { sequelize: Sequelize; repository: GitopsRepository; afterMerge?: () => Promise<unknown> },
  changeId: string,
  actor: string,
): Promise<MergedChange> {
  const { sequelize, repository } = deps;
  const [change] = await sequelize.query<{ status: string; pull_request_number: number | null; merge_commit_sha: string | null }>(
    'SELECT status, pull_request_number, merge_commit_sha FROM change_requests WHERE id = :id',
    { type: QueryTypes.SELECT, replacements: { id: changeId } },
  );
  if (!change) throw new NotFoundError(`Change ${changeId} does not exist.`);
  if (change.pull_request_number === null || (change.status !== 'open' && change.status !== 'merged')) {
    throw new ConflictError('change-not-open', `Change ${changeId} is ${change.status} and has no open pull request to merge.`);
  }
  const number = change.pull_request_number;
  // Who asked, as a person (the users row the authentication keeps), for the merge commit's trailer.
  const [person] = await sequelize.query<{ username: string | null; email: string | null }>('SELECT username, email FROM users WHERE subject = :subject', {
    type: QueryTypes.SELECT,
    replacements: { subject: actor },
  });
  const mergedBy = personLine(actor, { name: person?.username ?? undefined, email: person?.email ?? undefined });
  const pullRequest = change.status === 'merged' && change.merge_commit_sha ? undefined : await mergeOrExplain(repository, number, mergedBy);
  const mergeCommitSha = pullRequest?.mergeCommitSha ?? change.merge_commit_sha!;

  const changeIds = await sequelize.transaction(async (tx) => {
    await recordPullRequestFate(sequelize, tx, { number, branch: pullRequest?.branch ?? null, state: 'merged', mergeCommitSha }, {
      cause: 'change.merged',
      actor,
      detail: { pullRequestNumber: number, mergeCommitSha },
    });
    const all = await sequelize.query<{ id: string }>('SELECT id FROM change_requests WHERE pull_request_number = :number ORDER BY created_at, id', {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: { number },
    });
    return all.map((r) => r.id);
  });
  // Main moved: read it back now rather than at the next reconciler pass (best effort: the
  // reconciler and the push webhook converge it anyway).
  await deps.afterMerge?.().catch((error: unknown) => { if (process.env.DEBUG_CONVERGE) console.error(error); });
  return { id: changeId, pullRequestNumber: number, mergeCommitSha, changeIds };
}

/** A pull request the backend will not merge is the caller's conflict (409), retryable unless it conflicts. */
async function mergeOrExplain(repository: GitopsRepository, number: number, mergedBy: string): Promise<PullRequest> {
  try {
    return await repository.mergePullRequest(number, { mergedBy });
  } catch (error) {
    if (error instanceof PullRequestNotMergeableError) {
      throw new ConflictError('pull-request-not-mergeable', `${error.message}.`, { retryable: error.reason === 'waiting', cause: error });
    }
    // Closed on the backend (its webhook not seen yet): nothing to merge; the reconciler will
    // record the close.
    if (error instanceof RepositoryRejectedError) throw new ConflictError('pull-request-not-open', `${error.message}.`, { retryable: false, cause: error });
    throw error;
  }
}
