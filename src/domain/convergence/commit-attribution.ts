import { isSlug, tenantOfPath } from '../../gitops/tenant-paths.ts';
import type { CommitSummary } from '../../gitops/repository.ts';

/**
 * Who put a commit on the base branch, read from the commit alone (pure). Our commits carry
 * Change-Id trailers (direct commits, and rebase merges, which keep each commit's message); a
 * merge or squash of one of our pull requests names the pull request in GitHub's default
 * message. Matched here and nowhere else.
 */
export type Landing = { kind: 'direct'; changeIds: string[] } | { kind: 'pull-request'; number: number } | { kind: 'external' };

/**
 * GitHub's default messages: "Merge pull request #123 from owner/branch" for a merge commit,
 * "<title> (#123)" as a squash commit's title (docs.github.com, "About merge methods on GitHub"
 * and "Configuring commit squashing"); the local driver writes the former too.
 */
const MERGE_MESSAGE = /^Merge pull request #(\d+) from \S+/;
const SQUASH_TITLE = /\(#(\d+)\)$/;

export function landedBy(commit: Pick<CommitSummary, 'message' | 'trailers'>): Landing {
  const title = commit.message.split('\n', 1)[0] ?? '';
  const merge = MERGE_MESSAGE.exec(title) ?? SQUASH_TITLE.exec(title);
  if (merge) return { kind: 'pull-request', number: Number(merge[1]) };
  const changeIds = commit.trailers['Change-Id'] ?? [];
  if (changeIds.length > 0) return { kind: 'direct', changeIds };
  return { kind: 'external' };
}

/**
 * The instance directory (`<org dir>/apps/<name>`, in either layout: tenant-paths.ts) a path is
 * at or below; undefined otherwise.
 */
export function instanceDirOf(path: string): string | undefined {
  const tenant = tenantOfPath(path);
  if (!tenant || tenant.rest[0] !== 'apps' || tenant.rest[1] === undefined || !isSlug(tenant.rest[1], 'instanceName')) return undefined;
  return `${tenant.dir}/apps/${tenant.rest[1]}`;
}
