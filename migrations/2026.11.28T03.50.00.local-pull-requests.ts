import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * The local GitOps driver's pull requests: a branch of the bare repository plus this row.
 * One row per branch, so a retried "open" finds the pull request it opened before.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TABLE local_pull_requests (
      number serial PRIMARY KEY,
      repository text NOT NULL,
      branch text NOT NULL,
      base_branch text NOT NULL,
      title text NOT NULL,
      body text NOT NULL,
      state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'merged', 'closed')),
      head_sha text,
      merge_commit_sha text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (repository, branch)
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query('DROP TABLE local_pull_requests');
}
