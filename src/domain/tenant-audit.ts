import { BadRequestError } from '../errors.ts';
import { QueryTypes, type Sequelize } from 'sequelize';
import { tenantDir, type TenantLayout } from '../gitops/tenant-paths.ts';
import { changeTrailerGroups, type GitopsRepository } from '../gitops/repository.ts';
import { pullRequestLinks } from './changes/change-views.ts';

export interface AuditEntry {
  commitSha: string;
  title: string;
  /**
   * `control-plane`: a commit the service wrote (it carries a Batch-Id); `external`: one a
   * person or another tool put on the base branch, which the audit shows as Git has it.
   */
  source: 'control-plane' | 'external';
  /** The commit's Git author (for the service's commits, the service; who asked is requestedBy). */
  author: { name: string; email: string };
  authoredAt: string;
  changeIds: string[];
  instanceIds: string[];
  offerings: string[];
  requestedBy: string[];
  reasons: string[];
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
  // The org's directory where it sits now (tenant-paths.ts); before a layout migration moved
  // it, its history is at the flat path (README "Repository layout").
  const [row] = await deps.sequelize.query<{ tenant_layout: TenantLayout }>('SELECT tenant_layout FROM organizations WHERE slug = :org', { type: QueryTypes.SELECT, replacements: { org } });
  const dir = tenantDir(org, row?.tenant_layout ?? 'bucketed');
  if (page.cursor !== undefined) await requireCursorOnBase(deps.repository, page.cursor);
  const history = await deps.repository.history({ pathPrefix: `${dir}/`, limit: page.limit, ...(page.cursor ? { cursor: page.cursor } : {}) });
  const ids = [...new Set(history.commits.flatMap((c) => changeTrailerGroups(c.message).filter((g) => g.Org === org).map((g) => g['Change-Id']!)).filter((id) => UUID.test(id)))];
  const links = await pullRequestLinks(deps.sequelize, ids);
  const items = history.commits.map((commit) => {
    // A batch commit carries a trailer group for every change in it, other orgs' too: every
    // field shown is taken from this tenant's groups only, and a batch's title (which names
    // other orgs) is replaced by one about this tenant's changes.
    const groups = changeTrailerGroups(commit.message);
    const mine = groups.filter((g) => g.Org === org && g['Change-Id'] !== undefined);
    const others = groups.length - mine.length;
    const ids = mine.map((g) => g['Change-Id']!);
    const values = (key: string) => [...new Set(mine.flatMap((g) => (g[key] === undefined ? [] : [g[key]!])))];
    const ours = commit.trailers['Batch-Id'] !== undefined;
    return {
      commitSha: commit.sha,
      source: ours ? ('control-plane' as const) : ('external' as const),
      author: commit.author,
      title: others > 0 ? `${mine.length} change${mine.length === 1 ? '' : 's'} for ${org}, committed in a batch with other workspaces` : (commit.message.split('\n')[0] ?? ''),
      authoredAt: commit.authoredAt,
      changeIds: ids,
      instanceIds: values('Instance-Id'),
      offerings: values('Offering'),
      requestedBy: values('Requested-By'),
      reasons: values('Reason'),
      pullRequests: ids.map((changeId) => ({ changeId, number: links.get(changeId)?.number ?? null, url: links.get(changeId)?.url ?? null })),
    };
  });
  return { items, nextCursor: history.nextCursor ?? null, unknownPaths: await unknownPaths(deps.sequelize, dir) };
}

/**
 * A page cursor is a commit of the base branch (a nextCursor): anything else (a commit that does
 * not exist, or one of a branch that never merged) is the caller's error, and would otherwise
 * page through history that is not what runs.
 */
async function requireCursorOnBase(repository: GitopsRepository, cursor: string): Promise<void> {
  const base = await repository.getBranch(repository.baseBranch);
  if (base === undefined || !(await repository.isAncestor(cursor, base))) {
    throw new BadRequestError(`cursor ${cursor} is not a commit of ${repository.baseBranch}: pass back a nextCursor.`);
  }
}

/** A directory under tenants/<org>/apps/ on the base branch that no instance owns (recorded by convergence). */
export interface UnknownPath {
  path: string;
  commitSha: string;
  author: string | null;
  firstSeenAt: string;
}

async function unknownPaths(sequelize: Sequelize, dir: string): Promise<UnknownPath[]> {
  // By path prefix, not organization id: the directory may name an org that does not exist.
  const rows = await sequelize.query<{ path: string; commit_sha: string; author: string | null; first_seen_at: Date }>(
    `SELECT path, commit_sha, author, first_seen_at FROM unknown_tenant_paths
      WHERE resolved_at IS NULL AND starts_with(path, $prefix) ORDER BY path LIMIT 100`,
    { type: QueryTypes.SELECT, bind: { prefix: `${dir}/apps/` } },
  );
  return rows.map((r) => ({ path: r.path, commitSha: r.commit_sha, author: r.author, firstSeenAt: r.first_seen_at.toISOString() }));
}
