import { instanceDir, TENANT_LAYOUTS, tenantBaseDir, tenantOfPath, type TenantLayout } from '../../gitops/tenant-paths.ts';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { CommitSummary, GitopsRepository } from '../../gitops/repository.ts';
import { readObservedDirectory, sameSpec, type InstanceSpec, type ObservedDirectory } from '../../gitops/instance-spec.ts';
import { SERVICE_ACTOR, type MergePolicies } from '../changes/change-kinds.ts';
import { changesByIds, findChangesOfPullRequest, insertChangeRequest, lockChanges, moveChanges } from '../changes/change-requests.ts';
import { recordPullRequestFate, withInstances } from '../changes/pull-request-fate.ts';
import { applyInstanceEvents, lockInstances, type InstanceEventInput } from '../instance-events.ts';
import { instanceDirOf, landedBy, type Landing } from './commit-attribution.ts';

export interface ConvergenceDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'baseBranch' | 'getBranch' | 'compareCommits' | 'readDirectories' | 'isAncestor'>;
  mergePolicy: MergePolicies;
}

/** What a push webhook already says about the move (saves the compare call). */
export interface BaseBranchMove {
  before: string;
  after: string;
  commits: CommitSummary[];
}

export interface ConvergenceResult {
  from: string | undefined;
  head: string;
  commits: number;
  /** Instances whose observed spec was read at `head`. */
  observed: number;
  /** Commits on tenant paths that carry no change of ours. */
  external: string[];
  /** Directories under tenants/<org>/apps/ that no instance of ours owns. */
  unknown: string[];
  /** Changes proposed to restore what a user asked for, after a stale merge. */
  proposals: string[];
}

interface InstanceAtPath {
  id: string;
  organization_id: string;
  org: string;
  tenant_layout: TenantLayout;
  project: string;
  name: string;
  role: string;
  offering: string;
  observed_state: 'present' | 'absent';
  observed_spec: InstanceSpec | null;
  observed_commit_sha: string | null;
  last_change_id: string | null;
  latest_kind: string | null;
  latest_status: string | null;
  latest_payload: { offering?: string; version?: string; parameters?: Record<string, unknown>; templatePath?: string } | null;
}

/**
 * Reads what the base branch now holds for the tenant paths that moved since the last read and
 * makes the database agree: each instance's observed spec (present or absent, version,
 * parameters), the changes that landed (by the Change-Id of a direct commit or the number of a
 * merged pull request: a lost webhook is made good here), engineers' commits recorded on the
 * instances they touched, unknown directories reported, and every affected instance's state
 * derived again. Where a stale change of ours was merged after a newer one, the change that
 * restores what the user asked for is proposed. Idempotent and safe to run concurrently: the
 * last read head is compare-and-swapped, and a run that lost the race changes nothing.
 */
export async function convergeToBaseBranch(deps: ConvergenceDeps, move?: BaseBranchMove): Promise<ConvergenceResult | undefined> {
  const { sequelize, repository } = deps;
  const branch = repository.baseBranch;
  const [recorded] = await sequelize.query<{ sha: string }>('SELECT sha FROM base_branch_heads WHERE branch = $branch', { type: QueryTypes.SELECT, bind: { branch } });
  const from = recorded?.sha;
  const head = move && move.before === from ? move.after : await repository.getBranch(branch);
  if (!head) return undefined;
  // Instances whose latest change merged after main was last read for them are read too, even
  // where no commit touched their directory (a delete cut from a main that did not hold the
  // instance yet removes nothing, and only reading the directory shows it is still there), and
  // even when main has not moved: the merge may have been recorded (by its webhook) just after
  // the read that saw it, and the instance would wait for the next commit to anyone's tenant.
  const unsettled = await unsettledDirs(sequelize);
  if (head === from && unsettled.length === 0) return undefined;
  // A recorded head main no longer contains (a force-push, a repository restored from elsewhere)
  // says nothing about what changed since: read every tenant directory, as on the first read.
  const continues = from !== undefined && (head === from || (await repository.isAncestor(from, head).catch(() => false)));
  const commits = !continues
    ? await repository.compareCommits(undefined, head)
    : head === from
      ? []
      : move && move.before === from && move.after === head
        ? move.commits
        : await repository.compareCommits(from, head);

  const dirs = new Set<string>();
  for (const commit of commits) for (const path of commit.paths) addDir(dirs, path);
  for (const dir of unsettled) dirs.add(dir);
  // Where each org that moved sits now: its base directory in either layout (a relayout, or a
  // person moving it back, changes it in whatever order the events come).
  const orgs = new Set<string>();
  for (const commit of commits) for (const path of commit.paths) orgs.add(tenantOfPath(path)?.org ?? '');
  for (const dir of unsettled) orgs.add(tenantOfPath(dir)?.org ?? '');
  orgs.delete('');
  const baseDirs = [...orgs].flatMap((org) => TENANT_LAYOUTS.map((layout) => tenantBaseDir(org, layout)));
  let contents: Map<string, Map<string, string>>;
  if (!continues) {
    const all = (await repository.readDirectories(head, ['tenants'])).get('tenants')!;
    contents = new Map();
    const into = (dir: string, path: string, content: string) => (contents.get(dir) ?? contents.set(dir, new Map()).get(dir)!).set(path, content);
    // One pass over the tree: each file into its instance directory or its org's base.
    for (const [path, content] of all) {
      const instance = instanceDirOf(path);
      if (instance) {
        dirs.add(instance);
        into(instance, path, content);
      }
      const tenant = tenantOfPath(path);
      if (tenant?.rest[0] === 'base') {
        orgs.add(tenant.org);
        into(`${tenant.dir}/base`, path, content);
      }
    }
  } else {
    contents = await repository.readDirectories(head, [...dirs, ...baseDirs]);
  }
  const layouts = new Map<string, TenantLayout>();
  for (const org of orgs) {
    const held = TENANT_LAYOUTS.filter((layout) => (contents.get(tenantBaseDir(org, layout))?.size ?? 0) > 0);
    if (held.length > 0) layouts.set(org, held[0]!); // both: the bucketed one (TENANT_LAYOUTS' order) is the org's
  }
  const landings = commits.map((commit) => ({ commit, landing: landedBy(commit) }));

  return sequelize.transaction(async (tx) => {
    await sequelize.query('INSERT INTO base_branch_heads (branch, sha) VALUES ($branch, $sha) ON CONFLICT (branch) DO NOTHING', { bind: { branch, sha: from ?? '' }, transaction: tx });
    const [locked] = await sequelize.query<{ sha: string }>('SELECT sha FROM base_branch_heads WHERE branch = $branch FOR UPDATE', { type: QueryTypes.SELECT, bind: { branch }, transaction: tx });
    if ((locked!.sha || undefined) !== from) return undefined; // another replica read main meanwhile

    const result: ConvergenceResult = { from, head, commits: commits.length, observed: 0, external: [], unknown: [], proposals: [] };
    const ours = await recordLandings(sequelize, tx, landings);
    if (layouts.size > 0) {
      await sequelize.query(
        `UPDATE organizations o SET tenant_layout = l.layout FROM jsonb_to_recordset($layouts::jsonb) AS l(org text, layout text)
          WHERE o.slug = l.org AND o.tenant_layout <> l.layout`,
        { bind: { layouts: JSON.stringify([...layouts].map(([org, layout]) => ({ org, layout }))) }, transaction: tx },
      );
    }
    const instances = await instancesAtPaths(sequelize, tx, [...dirs]);
    await lockInstances(sequelize, tx, instances.map((i) => i.id));

    const events: InstanceEventInput[] = [];
    const readAbsent: string[] = [];
    for (const dir of dirs) {
      const observed = readObservedDirectory(contents.get(dir) ?? new Map());
      const present = (contents.get(dir)?.size ?? 0) > 0;
      // An instance lives where its org sits now (a flat path of a bucketed org is nobody's).
      const atPath = instances.filter((i) => instanceDir(i.org, i.name, i.tenant_layout) === dir);
      const owner = present ? atPath.find((i) => i.id === observed.instanceId) : undefined;
      const lastCommit = [...landings].reverse().find(({ commit }) => commit.paths.some((p) => p.startsWith(`${dir}/`)));
      if (present && !owner) {
        result.unknown.push(dir);
        await recordUnknownPath(sequelize, tx, dir, atPath[0]?.organization_id, lastCommit?.commit ?? { sha: head, author: { name: '', email: '' } });
      } else {
        // Owned again, or gone from main: nothing unknown there any more.
        await sequelize.query('UPDATE unknown_tenant_paths SET resolved_at = now() WHERE path = $dir AND resolved_at IS NULL', { bind: { dir }, transaction: tx });
      }
      for (const instance of atPath) {
        const mine = instance === owner;
        const wroteHere = ours.wroteOnMain.has(instance.id);
        if (!mine && instance.observed_state === 'absent' && !wroteHere) {
          // Still absent: nothing to record, but read (it is settled, not read again each pass).
          readAbsent.push(instance.id);
          continue;
        }
        result.observed += 1;
        await recordObservation(sequelize, tx, instance, mine ? observed : undefined, lastCommit?.commit.sha ?? head, lastCommit !== undefined, wroteHere);
        const external = landings.filter(({ commit, landing }) => (landing.kind === 'external' || ours.external.has(commit.sha)) && commit.paths.some((p) => p.startsWith(`${dir}/`)));
        for (const { commit } of external) {
          if (!result.external.includes(commit.sha)) result.external.push(commit.sha);
          events.push({
            instanceId: instance.id,
            event: 'git.external',
            cause: {
              cause: 'git.external',
              actor: commit.author.email || commit.author.name || 'unknown',
              recordUnchanged: true,
              detail: { commit: commit.sha, author: commit.author, message: commit.message.slice(0, 2000) },
            },
          });
        }
        events.push({ instanceId: instance.id, event: 'main.observed', cause: { cause: 'git.observed', actor: 'git', detail: { commit: lastCommit?.commit.sha ?? head, present: mine } } });
        // Who wrote what main now holds for it: one of our changes (which?), or a person.
        const writers = lastCommit ? ours.changesOf.get(lastCommit.commit.sha) : await writersOf(sequelize, tx, instance);
        const proposal = await restoreDesired(deps, tx, instance, mine ? observed.spec : undefined, mine, writers);
        if (proposal) {
          result.proposals.push(proposal);
          events.push({ instanceId: instance.id, event: 'change.requested', cause: { cause: 'drift.proposed', actor: SERVICE_ACTOR, changeId: proposal } });
        }
      }
    }
    await applyInstanceEvents(sequelize, tx, events);
    if (readAbsent.length > 0) await sequelize.query('UPDATE instances SET observed_at = now() WHERE id = ANY($ids)', { bind: { ids: readAbsent }, transaction: tx });
    await sequelize.query('UPDATE base_branch_heads SET sha = $sha, observed_at = now() WHERE branch = $branch', { bind: { branch, sha: head }, transaction: tx });
    return result;
  });
}

async function unsettledDirs(sequelize: Sequelize): Promise<string[]> {
  const rows = await sequelize.query<{ org: string; name: string; tenant_layout: TenantLayout }>(
    `SELECT o.slug AS org, i.name, o.tenant_layout
       FROM instances i JOIN organizations o ON o.id = i.organization_id JOIN change_requests c ON c.id = i.last_change_id
      WHERE c.status = 'merged' AND i.state <> 'deleted' AND (i.observed_at IS NULL OR i.observed_at < c.updated_at)
      LIMIT 500`,
    { type: QueryTypes.SELECT },
  );
  return rows.map((r) => instanceDir(r.org, r.name, r.tenant_layout));
}

/** The changes of ours whose commit put what main holds for the instance there (none: a person's). */
async function writersOf(sequelize: Sequelize, tx: Transaction, instance: InstanceAtPath): Promise<Set<string> | undefined> {
  if (!instance.observed_commit_sha) return undefined;
  const rows = await sequelize.query<{ id: string }>(
    'SELECT id FROM change_requests WHERE instance_id = $id AND (merge_commit_sha = $sha OR commit_sha = $sha)',
    { type: QueryTypes.SELECT, bind: { id: instance.id, sha: instance.observed_commit_sha }, transaction: tx },
  );
  return rows.length > 0 ? new Set(rows.map((r) => r.id)) : undefined;
}

function addDir(dirs: Set<string>, path: string): void {
  const dir = instanceDirOf(path);
  if (dir) dirs.add(dir);
}

/**
 * Changes that main shows landed: a direct commit's Change-Id trailers, a merged pull request's
 * number. Returns the commits that name no change of ours (they count as external).
 */
async function recordLandings(
  sequelize: Sequelize,
  tx: Transaction,
  landings: { commit: CommitSummary; landing: Landing }[],
): Promise<{ external: Set<string>; changesOf: Map<string, Set<string>>; wroteOnMain: Set<string> }> {
  const external = new Set<string>();
  const changesOf = new Map<string, Set<string>>();
  // Instances a create or update of ours put on main somewhere in the range (even if a later
  // commit of the range removed them again: Argo CD may have deployed them in between).
  const wroteOnMain = new Set<string>();
  const wrote = (changes: { kind: string; instance_id: string | null }[]) => {
    for (const c of changes) if (c.instance_id && (c.kind === 'instance.create' || c.kind === 'instance.update')) wroteOnMain.add(c.instance_id);
  };
  for (const { commit, landing } of landings) {
    if (landing.kind === 'pull-request') {
      const changes = await findChangesOfPullRequest(sequelize, tx, { number: landing.number, branch: null });
      if (changes.length === 0) {
        external.add(commit.sha);
        continue;
      }
      changesOf.set(commit.sha, new Set(changes.map((c) => c.id)));
      wrote(changes);
      await recordPullRequestFate(sequelize, tx, { number: landing.number, branch: null, state: 'merged', mergeCommitSha: commit.sha }, {
        cause: 'git.merged',
        actor: 'git',
        detail: { commit: commit.sha },
      });
    } else if (landing.kind === 'direct') {
      const known = await changesByIds(sequelize, tx, landing.changeIds);
      if (known.length === 0) {
        external.add(commit.sha);
        continue;
      }
      changesOf.set(commit.sha, new Set(known.map((c) => c.id)));
      wrote(known);
      await lockInstances(sequelize, tx, known.flatMap((c) => (c.instance_id ? [c.instance_id] : [])));
      const moves = await moveChanges(sequelize, tx, await lockChanges(sequelize, tx, known.map((c) => c.id)), 'merged', { mergeCommitSha: commit.sha, authoritative: false, lastError: null });
      await withInstances(sequelize, tx, moves, 'change.merged', { cause: 'git.merged', actor: 'git', detail: { commit: commit.sha } });
    }
  }
  return { external, changesOf, wroteOnMain };
}

async function instancesAtPaths(sequelize: Sequelize, tx: Transaction, dirs: string[]): Promise<InstanceAtPath[]> {
  const keys = dirs.map((dir) => {
    const tenant = tenantOfPath(dir)!;
    return { org: tenant.org, name: tenant.rest[1]! };
  });
  if (keys.length === 0) return [];
  return sequelize.query<InstanceAtPath>(
    `SELECT i.id, i.organization_id, o.slug AS org, o.tenant_layout, p.slug AS project, i.name, f.role, f.slug AS offering, i.observed_state,
            CASE WHEN i.observed_state = 'present' THEN jsonb_build_object('offering', of.slug, 'version', ov.version, 'parameters', i.observed_parameters) END AS observed_spec,
            i.observed_commit_sha, i.last_change_id, c.kind AS latest_kind, c.status AS latest_status, c.payload AS latest_payload
       FROM jsonb_to_recordset($keys::jsonb) AS k(org text, name text)
       JOIN organizations o ON o.slug = k.org
       JOIN instances i ON i.organization_id = o.id AND i.name = k.name
       JOIN projects p ON p.id = i.project_id
       JOIN offering_versions v ON v.id = i.offering_version_id JOIN offerings f ON f.id = v.offering_id
       LEFT JOIN offering_versions ov ON ov.id = i.observed_offering_version_id LEFT JOIN offerings of ON of.id = ov.offering_id
       LEFT JOIN change_requests c ON c.id = i.last_change_id
      ORDER BY i.id`,
    { type: QueryTypes.SELECT, bind: { keys: JSON.stringify(keys) }, transaction: tx },
  );
}

/**
 * Writes what main holds for the instance. A directory that changed (or came, or went) resets
 * Argo CD's health: what it said was about other content. The version and
 * parameters the API shows are main's, whenever main has them.
 */
async function recordObservation(
  sequelize: Sequelize,
  tx: Transaction,
  instance: InstanceAtPath,
  observed: ObservedDirectory | undefined,
  commit: string,
  touched: boolean,
  wasPresent: boolean,
): Promise<void> {
  const present = observed !== undefined;
  const spec = observed?.spec;
  // A commit in the range touched the directory: what Argo CD deploys changed, even where the
  // spec annotation did not (an engineer's edit of the values, say).
  const changed =
    touched || present !== (instance.observed_state === 'present') || (spec !== undefined && (instance.observed_spec === null || !sameSpec(spec, instance.observed_spec)));
  await sequelize.query(
    `UPDATE instances i SET observed_state = $state, observed_at = now(), ever_present = i.ever_present OR $present OR $wasPresent,
       observed_commit_sha = CASE WHEN $changed THEN $commit ELSE coalesce(i.observed_commit_sha, $commit) END,
       health = CASE WHEN $changed AND i.health <> 'gone' THEN 'unknown' WHEN $changed AND $present THEN 'unknown' ELSE i.health END,
       running_since = CASE WHEN $present THEN i.running_since END,
       suspended = CASE WHEN $present THEN i.suspended ELSE false END,
       observed_parameters = CASE WHEN $hasSpec THEN $parameters::jsonb ELSE i.observed_parameters END,
       observed_offering_version_id = coalesce(v.id, i.observed_offering_version_id),
       offering_version_id = CASE WHEN $present THEN coalesce(v.id, i.offering_version_id) ELSE i.offering_version_id END,
       parameters = CASE WHEN $hasSpec THEN $parameters::jsonb ELSE i.parameters END,
       updated_at = now()
     FROM (SELECT 1) one LEFT JOIN (offering_versions v JOIN offerings f ON f.id = v.offering_id) ON f.slug = $offering AND v.version = $version
     WHERE i.id = $id`,
    {
      bind: {
        id: instance.id,
        state: present ? 'present' : 'absent',
        present,
        wasPresent,
        changed,
        commit,
        hasSpec: spec !== undefined,
        parameters: JSON.stringify(spec?.parameters ?? {}),
        offering: spec?.offering ?? '',
        version: spec?.version ?? '',
      },
      transaction: tx,
    },
  );
}

/**
 * After a stale change of ours merged over a newer one (a person merged an old create after the
 * delete, or an old update after a newer one), proposes the change that brings main back to the
 * latest request, once: the proposal is the instance's latest change from then on. An engineer's
 * own commit is not fought: the instance follows it.
 */
async function restoreDesired(
  deps: ConvergenceDeps,
  tx: Transaction,
  instance: InstanceAtPath,
  spec: InstanceSpec | undefined,
  present: boolean,
  writers: Set<string> | undefined,
): Promise<string | undefined> {
  const { sequelize } = deps;
  const [latest] = await sequelize.query<{ kind: string; status: string; payload: InstanceAtPath['latest_payload']; desired_state: 'present' | 'absent' }>(
    'SELECT c.kind, c.status, c.payload, i.desired_state FROM instances i JOIN change_requests c ON c.id = i.last_change_id WHERE i.id = $id',
    { type: QueryTypes.SELECT, bind: { id: instance.id }, transaction: tx },
  );
  let drift: string | null = null;
  let proposal: string | undefined;
  // Only a stale change of ours is undone: when main holds what the latest change wrote, or what
  // an engineer wrote, there is nothing to restore.
  const lastWasOurs = writers !== undefined && instance.last_change_id !== null && !writers.has(instance.last_change_id);
  // Deleted before main held it (its create cancelled, no Git change), and then a person merged
  // that create anyway: main holds what the cancelled change wrote, and its removal is proposed.
  const deletedBeforeMain =
    latest?.desired_state === 'absent' && latest.kind !== 'instance.delete' && latest.status === 'merged' && present && instance.last_change_id !== null && writers?.has(instance.last_change_id) === true;
  if (deletedBeforeMain) {
    drift = 'main holds the instance although it was deleted before its create reached main';
    proposal = await insertChangeRequest(sequelize, tx, {
      kind: 'instance.delete',
      payload: { org: instance.org, project: instance.project, instanceName: instance.name, offering: instance.offering, role: instance.role },
      organizationId: instance.organization_id,
      instanceId: instance.id,
      requestedBy: SERVICE_ACTOR,
      mergePolicy: deps.mergePolicy,
      reason: `The instance's cancelled create was merged after the instance was deleted: ${drift}.`,
    });
  } else if (latest && latest.status === 'merged' && lastWasOurs) {
    const base = { org: instance.org, project: instance.project, instanceName: instance.name, offering: instance.offering, role: instance.role };
    if (latest.kind === 'instance.delete' && present) {
      drift = 'main holds the instance although its deletion was merged';
      {
        proposal = await insertChangeRequest(sequelize, tx, {
          kind: 'instance.delete',
          payload: base,
          organizationId: instance.organization_id,
          instanceId: instance.id,
          requestedBy: SERVICE_ACTOR,
          mergePolicy: deps.mergePolicy,
          reason: `An older change of this instance was merged after its deletion: ${drift}.`,
        });
      }
    } else if (latest.kind !== 'instance.delete' && present && spec && latest.payload?.version !== undefined) {
      const wanted = { offering: latest.payload.offering ?? '', version: latest.payload.version, parameters: latest.payload.parameters ?? {} };
      if (!sameSpec(wanted, spec)) {
        drift = `main holds ${spec.offering} ${spec.version} with other parameters than the latest request (${wanted.version})`;
        if (latest.payload.templatePath) {
          proposal = await insertChangeRequest(sequelize, tx, {
            kind: 'instance.update',
            payload: {
              ...base,
              version: wanted.version,
              templatePath: latest.payload.templatePath,
              parameters: wanted.parameters,
              ...(await templatePathOf(sequelize, tx, spec)),
            },
            organizationId: instance.organization_id,
            instanceId: instance.id,
            requestedBy: SERVICE_ACTOR,
            mergePolicy: deps.mergePolicy,
            reason: `An older change of this instance was merged after a newer one: ${drift}.`,
          });
        }
      }
    }
  }
  await sequelize.query(
    'UPDATE instances SET drift = $drift, last_change_id = coalesce($proposal::uuid, last_change_id) WHERE id = $id',
    { bind: { id: instance.id, drift, proposal: proposal ?? null }, transaction: tx },
  );
  return proposal;
}

async function templatePathOf(sequelize: Sequelize, tx: Transaction, spec: InstanceSpec): Promise<{ previousTemplatePath?: string }> {
  const [row] = await sequelize.query<{ template_path: string }>(
    'SELECT v.template_path FROM offering_versions v JOIN offerings f ON f.id = v.offering_id WHERE f.slug = $offering AND v.version = $version',
    { type: QueryTypes.SELECT, bind: { offering: spec.offering, version: spec.version }, transaction: tx },
  );
  return row ? { previousTemplatePath: row.template_path } : {};
}

async function recordUnknownPath(sequelize: Sequelize, tx: Transaction, dir: string, organizationId: string | undefined, commit: { sha: string; author: { name: string; email: string } }): Promise<void> {
  const org = dir.split('/')[1]!;
  await sequelize.query(
    `INSERT INTO unknown_tenant_paths (path, organization_id, commit_sha, author)
     VALUES ($dir, coalesce($orgId::uuid, (SELECT id FROM organizations WHERE slug = $org)), $sha, $author)
     ON CONFLICT (path) DO UPDATE SET resolved_at = NULL, commit_sha = EXCLUDED.commit_sha, author = EXCLUDED.author
       WHERE unknown_tenant_paths.resolved_at IS NOT NULL`,
    { bind: { dir, orgId: organizationId ?? null, org, sha: commit.sha, author: commit.author.email || commit.author.name || null }, transaction: tx },
  );
}
