import { QueryTypes, type Sequelize } from 'sequelize';
import type { GitopsRepository } from '../../gitops/repository.ts';

export interface BranchCleanupDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'deleteBranch'>;
}

/**
 * Deletes the branches whose every change is merged, as GitHub's "automatically delete head
 * branches" does (GitHub advises keeping a repository under about 5,000 branches, and each batch
 * leaves one). A branch that still carries a change on its way, or a closed one a person may
 * reopen, is kept: a closed pull request cannot be reopened once its branch is gone. Idempotent
 * (deleting a deleted branch is not an error); replicas may run it at once.
 */
export async function deleteMergedBranches(deps: BranchCleanupDeps, limit = 10): Promise<string[]> {
  const rows = await deps.sequelize.query<{ branch: string }>(
    `SELECT DISTINCT c.branch FROM change_requests c
      WHERE c.status = 'merged' AND c.branch IS NOT NULL AND c.branch_deleted_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM change_requests o WHERE o.branch = c.branch AND o.status <> 'merged')
      LIMIT $limit`,
    { type: QueryTypes.SELECT, bind: { limit } },
  );
  const deleted: string[] = [];
  for (const { branch } of rows) {
    await deps.repository.deleteBranch(branch);
    await deps.sequelize.query("UPDATE change_requests SET branch_deleted_at = now() WHERE branch = $branch AND status = 'merged' AND branch_deleted_at IS NULL", { bind: { branch } });
    deleted.push(branch);
  }
  return deleted;
}
