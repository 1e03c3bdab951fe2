import { QueryTypes, type Sequelize } from 'sequelize';
import type { PullRequest } from '../repository.ts';

interface Row {
  number: number;
  branch: string;
  state: PullRequest['state'];
  head_sha: string | null;
  merge_commit_sha: string | null;
}

/** The database half of the local driver's pull requests (the other half is the branch). */
export class LocalPullRequests {
  readonly sequelize: Sequelize;
  /** Identifies the repository, so several bare repositories can share one database. */
  readonly repository: string;

  constructor(options: { sequelize: Sequelize; repository: string }) {
    this.sequelize = options.sequelize;
    this.repository = options.repository;
  }

  /** Opens one for `branch`, or returns the one that already exists (whatever its state). */
  async open(input: { branch: string; baseBranch: string; title: string; body: string; headSha: string }): Promise<Row> {
    const rows = await this.sequelize.query<Row>(
      `INSERT INTO local_pull_requests (repository, branch, base_branch, title, body, head_sha)
       VALUES (:repository, :branch, :base, :title, :body, :head)
       ON CONFLICT (repository, branch) DO UPDATE SET updated_at = local_pull_requests.updated_at
       RETURNING number, branch, state, head_sha, merge_commit_sha`,
      { type: QueryTypes.SELECT, replacements: { repository: this.repository, branch: input.branch, base: input.baseBranch, title: input.title, body: input.body, head: input.headSha } },
    );
    return rows[0]!;
  }

  async get(number: number): Promise<Row | undefined> {
    const rows = await this.sequelize.query<Row>(
      'SELECT number, branch, state, head_sha, merge_commit_sha FROM local_pull_requests WHERE repository = :repository AND number = :number',
      { type: QueryTypes.SELECT, replacements: { repository: this.repository, number } },
    );
    return rows[0];
  }

  async markMerged(number: number, headSha: string, mergeCommitSha: string): Promise<void> {
    await this.sequelize.query(
      `UPDATE local_pull_requests SET state = 'merged', head_sha = :head, merge_commit_sha = :merge, updated_at = now()
       WHERE repository = :repository AND number = :number`,
      { type: QueryTypes.UPDATE, replacements: { repository: this.repository, number, head: headSha, merge: mergeCommitSha } },
    );
  }
}
