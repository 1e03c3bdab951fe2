import { readObservedDirectory, type InstanceSpec } from '../../gitops/instance-spec.ts';
import { changeTrailerGroups, type GitopsRepository, type HistoryCommit } from '../../gitops/repository.ts';
import { tenantOfPath, type TenantLayout } from '../../gitops/tenant-paths.ts';
import { instanceDirOf } from '../convergence/commit-attribution.ts';

/** An instance as the repository alone tells it. */
export interface GitInstance {
  id: string;
  org: string;
  name: string;
  /** The project label of its objects; undefined where the objects carry none. */
  project: string | undefined;
  /** What the directory's objects say it runs (at the head, or where it last existed). */
  spec: InstanceSpec | undefined;
  /** Whether the base branch holds it now. */
  present: boolean;
}

/** A change of a tenant as its commit's trailer group tells it. */
export interface GitChange {
  id: string;
  kind: 'workspace.create' | 'instance.create' | 'instance.update' | 'instance.delete';
  org: string;
  instanceId: string | undefined;
  /** The subject of `Requested-By: Name <email> (subject)`. */
  requestedBy: string;
  reason: string | undefined;
  commitSha: string;
  authoredAt: string;
}

/** Everything the repository's base branch says about tenants. */
export interface GitInventory {
  head: string;
  /** Orgs whose base directory main holds, and where. */
  orgs: Map<string, TenantLayout>;
  instances: Map<string, GitInstance>;
  /** Oldest first. */
  changes: GitChange[];
  /** Instance directories on main whose objects carry no instance id (an engineer's own app). */
  unowned: string[];
  /** Instance ids a trailer names whose directory could not be found in any commit that names them. */
  unresolved: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Reads the base branch and its history into an inventory, through the driver (so it works on
 * GitHub too; against a mirror clone with the local driver it costs no API call): one read of
 * every file under tenants/ at the head, the history of tenants/ page by page, and for each
 * instance main no longer holds, the commit that last wrote it (its paths, then its directory)
 * for its name and spec.
 */
export async function readGitInventory(repository: GitopsRepository, options: { pageSize?: number } = {}): Promise<GitInventory> {
  const head = await repository.getBranch(repository.baseBranch);
  if (!head) throw new Error(`the repository has no branch ${repository.baseBranch}`);
  const files = (await repository.readDirectories(head, ['tenants'])).get('tenants') ?? new Map<string, string>();
  const orgs = new Map<string, TenantLayout>();
  const dirs = new Map<string, Map<string, string>>();
  for (const [path, content] of files) {
    const tenant = tenantOfPath(path);
    // Both layouts at once (a relayout half done by hand): the bucketed one is the org's, as convergence decides.
    if (tenant?.rest[0] === 'base' && orgs.get(tenant.org) !== 'bucketed') orgs.set(tenant.org, tenant.layout);
    const dir = instanceDirOf(path);
    if (dir) (dirs.get(dir) ?? dirs.set(dir, new Map()).get(dir)!).set(path, content);
  }
  const instances = new Map<string, GitInstance>();
  const unowned: string[] = [];
  for (const [dir, content] of dirs) {
    const observed = readObservedDirectory(content);
    const tenant = tenantOfPath(dir)!;
    if (!observed.instanceId || !UUID.test(observed.instanceId)) {
      unowned.push(dir);
      continue;
    }
    instances.set(observed.instanceId, { id: observed.instanceId, org: tenant.org, name: tenant.rest[1]!, project: observed.project, spec: observed.spec, present: true });
  }

  const history: HistoryCommit[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await repository.history({ pathPrefix: 'tenants/', limit: options.pageSize ?? 100, ...(cursor ? { cursor } : {}) });
    history.push(...page.commits);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  history.reverse();

  const changes: GitChange[] = [];
  const seen = new Set<string>();
  const lastWrite = new Map<string, string>(); // instance id → the commit of its latest create or update
  for (const commit of history) {
    for (const group of changeTrailerGroups(commit.message)) {
      const id = group['Change-Id'];
      const org = group.Org;
      if (!id || !UUID.test(id) || !org || seen.has(id)) continue;
      seen.add(id);
      const instanceId = group['Instance-Id'] && UUID.test(group['Instance-Id']) ? group['Instance-Id'] : undefined;
      const kind = kindOf(group, instanceId, lastWrite);
      if (instanceId && kind !== 'instance.delete') lastWrite.set(instanceId, commit.sha);
      changes.push({ id, kind, org, instanceId, requestedBy: subjectOf(group['Requested-By'] ?? 'unknown'), reason: group.Reason, commitSha: commit.sha, authoredAt: commit.authoredAt });
    }
  }

  // Instances main no longer holds: name and spec from the commit that last wrote them.
  const unresolved: string[] = [];
  for (const [instanceId, sha] of lastWrite) {
    if (instances.has(instanceId)) continue;
    const found = await directoryAt(repository, sha, instanceId);
    if (!found) {
      unresolved.push(instanceId);
      continue;
    }
    instances.set(instanceId, { ...found, id: instanceId, present: false });
  }
  return { head, orgs, instances, changes, unowned, unresolved };
}

/**
 * What a group was: a tenant change without an instance is its workspace; an instance's names
 * `Offering: slug/version` when it writes the instance and `Offering: slug` when it removes it
 * (commitMessage in change-publisher.ts); a write is a create the first time, an update after.
 */
function kindOf(group: Record<string, string>, instanceId: string | undefined, written: Map<string, string>): GitChange['kind'] {
  if (!instanceId) return 'workspace.create';
  if (!(group.Offering ?? '').includes('/')) return 'instance.delete';
  return written.has(instanceId) ? 'instance.update' : 'instance.create';
}

/** `Name <email> (subject)` → subject; `subject <email>` → subject; anything else as it is. */
export function subjectOf(requestedBy: string): string {
  const inParens = /\(([^()]+)\)\s*$/.exec(requestedBy);
  if (inParens) return inParens[1]!;
  return requestedBy.replace(/\s*<[^>]*>\s*$/, '').trim() || requestedBy;
}

/** The directory of `instanceId` among those `sha` touched, read at `sha`. */
async function directoryAt(repository: GitopsRepository, sha: string, instanceId: string): Promise<Omit<GitInstance, 'id' | 'present'> | undefined> {
  const [commit] = await repository.compareCommits(undefined, sha);
  const candidates = [...new Set((commit?.paths ?? []).map(instanceDirOf).filter((d): d is string => d !== undefined))];
  if (candidates.length === 0) return undefined;
  const read = await repository.readDirectories(sha, candidates);
  for (const dir of candidates) {
    const observed = readObservedDirectory(read.get(dir) ?? new Map());
    if (observed.instanceId !== instanceId) continue;
    const tenant = tenantOfPath(dir)!;
    return { org: tenant.org, name: tenant.rest[1]!, project: observed.project, spec: observed.spec };
  }
  return undefined;
}
