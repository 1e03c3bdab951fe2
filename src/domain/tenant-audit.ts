import { QueryTypes, type Sequelize } from 'sequelize';
import { tenantDir } from '../gitops/tenant-paths.ts';
import type { GitopsRepository } from '../gitops/repository.ts';
import { pullRequestLinks } from './changes/change-views.ts';

export interface AuditEntry {
  commitSha: string;
  title: string;
  authoredAt: string;
  changeIds: string[];
  instanceIds: string[];
  offerings: string[];
  requestedBy: string[];
  pullRequests: { changeId: string; number: number | null; url: string | null }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A tenant's history as Git tells it: commits on the base branch that touched tenants/<org>/,
 * with their trailers, joined with the pull requests recorded for their Change-Ids. The caller
 * has already checked that the principal may read the org.
 */
export async function tenantAudit(
  deps: { sequelize: Sequelize; repository: GitopsRepository },
  org: string,
  page: { limit: number; cursor?: string },
): Promise<{ items: AuditEntry[]; nextCursor: string | null; unknownPaths: UnknownPath[] }> {
  const history = await deps.repository.history({ pathPrefix: `${tenantDir(org)}/`, limit: page.limit, ...(page.cursor ? { cursor: page.cursor } : {}) });
  const ids = [...new Set(history.commits.flatMap((c) => c.trailers['Change-Id'] ?? []).filter((id) => UUID.test(id)))];
  const links = await pullRequestLinks(deps.sequelize, ids);
  const items = history.commits.map((commit) => {
    // A batch commit carries trailers for every change in it; keep only this tenant's.
    const changeIds = commit.trailers['Change-Id'] ?? [];
    const orgs = commit.trailers.Org ?? [];
    const mine = orgs.length === changeIds.length ? changeIds.filter((_, i) => orgs[i] === org) : changeIds;
    return {
      commitSha: commit.sha,
      title: commit.message.split('\n')[0] ?? '',
      authoredAt: commit.authoredAt,
      changeIds: mine,
      instanceIds: commit.trailers['Instance-Id'] ?? [],
      offerings: commit.trailers.Offering ?? [],
      requestedBy: [...new Set(commit.trailers['Requested-By'] ?? [])],
      pullRequests: mine.map((changeId) => ({ changeId, number: links.get(changeId)?.number ?? null, url: links.get(changeId)?.url ?? null })),
    };
  });
  return { items, nextCursor: history.nextCursor ?? null, unknownPaths: await unknownPaths(deps.sequelize, org) };
}

/** A directory under tenants/<org>/apps/ on the base branch that no instance owns (recorded by convergence). */
export interface UnknownPath {
  path: string;
  commitSha: string;
  author: string | null;
  firstSeenAt: string;
}

async function unknownPaths(sequelize: Sequelize, org: string): Promise<UnknownPath[]> {
  // By path prefix, not organization id: the directory may name an org that does not exist.
  const rows = await sequelize.query<{ path: string; commit_sha: string; author: string | null; first_seen_at: Date }>(
    `SELECT path, commit_sha, author, first_seen_at FROM unknown_tenant_paths
      WHERE resolved_at IS NULL AND starts_with(path, $prefix) ORDER BY path LIMIT 100`,
    { type: QueryTypes.SELECT, bind: { prefix: `${tenantDir(org)}/apps/` } },
  );
  return rows.map((r) => ({ path: r.path, commitSha: r.commit_sha, author: r.author, firstSeenAt: r.first_seen_at.toISOString() }));
}
