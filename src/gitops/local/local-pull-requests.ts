import { QueryTypes, type Sequelize } from 'sequelize';
import { RepositoryRejectedError, type PullRequest } from '../repository.ts';

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

  /**
   * Closes an open one at `headSha`, appending `comment` to its body (once: a comment the body
   * already holds is not appended again). The body stands in for GitHub's conversation, which
   * spares the table a comments column; nothing reads the body back but people and specs.
   * Undefined when it is not open (any more): the caller re-reads it.
   */
  async close(number: number, input: { headSha: string; comment: string }): Promise<Row | undefined> {
    const rows = await this.sequelize.query<Row>(
      `UPDATE local_pull_requests
       SET state = 'closed', head_sha = :head, updated_at = now(),
           body = CASE WHEN strpos(body, :block) > 0 THEN body ELSE body || :block END
       WHERE repository = :repository AND number = :number AND state = 'open'
       RETURNING number, branch, state, head_sha, merge_commit_sha`,
      {
        type: QueryTypes.SELECT,
        replacements: { repository: this.repository, number, head: input.headSha, block: commentBlock(input.comment) },
      },
    );
    return rows[0];
  }

  /**
   * A person closing or reopening it: the local stand-in for GitHub's "Close" and "Reopen"
   * buttons, for specs of what the service does when someone else acts. Like GitHub it refuses
   * to change a merged one. Unlike GitHub it does not check the branch (this is the database
   * half only), so reopening one whose branch is gone or has moved is the spec's own doing.
   */
  async setState(number: number, state: 'open' | 'closed'): Promise<void> {
    const rows = await this.sequelize.query<{ number: number }>(
      `UPDATE local_pull_requests SET state = :state, updated_at = now()
       WHERE repository = :repository AND number = :number AND state <> 'merged'
       RETURNING number`,
      { type: QueryTypes.SELECT, replacements: { repository: this.repository, number, state } },
    );
    if (rows.length === 0) throw new RepositoryRejectedError(`pull request #${number} does not exist or is merged`);
  }

  async markMerged(number: number, headSha: string, mergeCommitSha: string): Promise<void> {
    await this.sequelize.query(
      `UPDATE local_pull_requests SET state = 'merged', head_sha = :head, merge_commit_sha = :merge, updated_at = now()
       WHERE repository = :repository AND number = :number`,
      { type: QueryTypes.UPDATE, replacements: { repository: this.repository, number, head: headSha, merge: mergeCommitSha } },
    );
  }
}

/** How a closing comment sits in the body: below a rule, after what was there. */
export function commentBlock(comment: string): string {
  return `\n\n---\n\n${comment.trimEnd()}\n`;
}
