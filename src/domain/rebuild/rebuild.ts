import { QueryTypes, type Sequelize } from 'sequelize';
import { canonicalJson } from '../../gitops/instance-spec.ts';
import type { GitopsRepository } from '../../gitops/repository.ts';
import type { TenantLayout } from '../../gitops/tenant-paths.ts';
import type { MergePolicy } from '../changes/change-kinds.ts';
import { convergeToBaseBranch } from '../convergence/base-branch-convergence.ts';
import { readGitInventory, type GitChange, type GitInstance, type GitInventory } from './git-inventory.ts';

/** One way the database disagrees with the repository, as `npm run rebuild` reports it. */
export type RebuildFinding =
  | { kind: 'org-missing'; org: string; detail: string }
  | { kind: 'org-layout'; org: string; database: TenantLayout; git: TenantLayout }
  | { kind: 'instance-missing'; instanceId: string; org: string; name: string; present: boolean; repairable: boolean; detail?: string }
  | { kind: 'instance-differs'; instanceId: string; org: string; name: string; fields: Record<string, { database: unknown; git: unknown }> }
  | { kind: 'instance-not-in-git'; instanceId: string; org: string; name: string; detail: string }
  | { kind: 'change-missing'; changeId: string; org: string; changeKind: GitChange['kind']; commitSha: string }
  | { kind: 'change-not-merged'; changeId: string; status: string }
  | { kind: 'ledger-orphan'; instanceId: string; table: string; rows: number; inGit: boolean }
  | { kind: 'unresolved'; instanceId: string; detail: string };

export interface RebuildReport {
  head: string;
  counts: { orgs: number; instances: number; present: number; changes: number };
  findings: RebuildFinding[];
  /** Undefined on a dry run; what --apply wrote otherwise. */
  applied?: { organizationsRelaid: number; projects: number; instances: number; changes: number };
}

interface DbInstance {
  id: string;
  org: string;
  name: string;
  offering: string;
  version: string;
  parameters: Record<string, unknown>;
  observed_state: 'present' | 'absent';
  state: string;
}

/**
 * Compares what the repository's base branch holds for tenants (readGitInventory) with the
 * database, and with `apply` restores what the database lacks: instances (with the ids their
 * objects carry), their change history (from the trailer groups), organizations' tenant paths;
 * then a full read of main (convergence, as after a force-push) derives every instance's state
 * the one way states are derived. It never deletes a row and never touches money: the ledger is
 * restored from backups, and the report says where the ledger names an instance that neither
 * the database nor Git holds.
 */
export async function rebuildFromGit(
  deps: { sequelize: Sequelize; repository: GitopsRepository; mergePolicy: MergePolicy },
  options: { apply: boolean },
): Promise<RebuildReport> {
  const { sequelize, repository } = deps;
  const git = await readGitInventory(repository);
  const findings: RebuildFinding[] = [];
  const orgRows = await sequelize.query<{ id: string; slug: string; tenant_layout: TenantLayout }>('SELECT id, slug, tenant_layout FROM organizations', { type: QueryTypes.SELECT });
  const orgs = new Map(orgRows.map((o) => [o.slug, o]));
  for (const [org, layout] of git.orgs) {
    const row = orgs.get(org);
    if (!row) findings.push({ kind: 'org-missing', org, detail: 'Git holds its base but not who its members are: restore the organizations, memberships and wallets from the database backup (README "Recovery"), then run this again.' });
    else if (row.tenant_layout !== layout) findings.push({ kind: 'org-layout', org, database: row.tenant_layout, git: layout });
  }

  const dbInstances = await sequelize.query<DbInstance>(
    `SELECT i.id, o.slug AS org, i.name, f.slug AS offering, v.version, i.parameters, i.observed_state, i.state
       FROM instances i JOIN organizations o ON o.id = i.organization_id
       JOIN offering_versions v ON v.id = i.offering_version_id JOIN offerings f ON f.id = v.offering_id`,
    { type: QueryTypes.SELECT },
  );
  const byId = new Map(dbInstances.map((i) => [i.id, i]));
  const catalog = await sequelize.query<{ offering: string; version: string }>('SELECT f.slug AS offering, v.version FROM offering_versions v JOIN offerings f ON f.id = v.offering_id', { type: QueryTypes.SELECT });
  const known = new Set(catalog.map((c) => `${c.offering}/${c.version}`));
  const missing: GitInstance[] = [];
  for (const instance of git.instances.values()) {
    const row = byId.get(instance.id);
    if (!row) {
      const problem = !orgs.has(instance.org) ? `its org ${instance.org} is not in the database` : !instance.spec ? 'its objects carry no gsv.io/spec annotation' : !known.has(`${instance.spec.offering}/${instance.spec.version}`) ? `offering ${instance.spec.offering} ${instance.spec.version} is not in the catalog` : undefined;
      findings.push({ kind: 'instance-missing', instanceId: instance.id, org: instance.org, name: instance.name, present: instance.present, repairable: problem === undefined, ...(problem ? { detail: problem } : {}) });
      if (!problem) missing.push(instance);
      continue;
    }
    const fields: Record<string, { database: unknown; git: unknown }> = {};
    const compare = (name: string, database: unknown, value: unknown) => {
      if (canonicalJson(database) !== canonicalJson(value)) fields[name] = { database, git: value };
    };
    compare('org', row.org, instance.org);
    compare('name', row.name, instance.name);
    compare('present', row.observed_state === 'present', instance.present);
    if (instance.present && instance.spec) {
      compare('offering', row.offering, instance.spec.offering);
      compare('version', row.version, instance.spec.version);
      compare('parameters', row.parameters, instance.spec.parameters);
    }
    if (Object.keys(fields).length > 0) findings.push({ kind: 'instance-differs', instanceId: instance.id, org: instance.org, name: instance.name, fields });
  }
  for (const row of dbInstances) {
    if (git.instances.has(row.id) || row.observed_state !== 'present') continue;
    findings.push({ kind: 'instance-not-in-git', instanceId: row.id, org: row.org, name: row.name, detail: 'The database believes main holds it; no commit of main does. Convergence will mark it absent on its next full read.' });
  }
  for (const id of git.unresolved) findings.push({ kind: 'unresolved', instanceId: id, detail: 'Trailers name it, but no commit that names it holds its directory.' });

  const changeRows = await sequelize.query<{ id: string; status: string }>('SELECT id, status FROM change_requests WHERE id = ANY($ids)', { type: QueryTypes.SELECT, bind: { ids: git.changes.map((c) => c.id) } });
  const changeStatus = new Map(changeRows.map((c) => [c.id, c.status]));
  const missingChanges = git.changes.filter((c) => !changeStatus.has(c.id));
  for (const change of missingChanges) findings.push({ kind: 'change-missing', changeId: change.id, org: change.org, changeKind: change.kind, commitSha: change.commitSha });
  for (const [id, status] of changeStatus) if (status !== 'merged') findings.push({ kind: 'change-not-merged', changeId: id, status });

  let applied: RebuildReport['applied'];
  if (options.apply) applied = await apply(deps, git, missing, missingChanges.filter((c) => orgs.has(c.org)), findings);

  // Money is not in Git: the ledger comes from backups, and names only instances that exist.
  for (const orphan of await ledgerOrphans(sequelize)) findings.push({ kind: 'ledger-orphan', ...orphan, inGit: git.instances.has(orphan.instanceId) });
  const present = [...git.instances.values()].filter((i) => i.present).length;
  return { head: git.head, counts: { orgs: git.orgs.size, instances: git.instances.size, present, changes: git.changes.length }, findings, ...(applied ? { applied } : {}) };
}

async function apply(
  deps: { sequelize: Sequelize; repository: GitopsRepository; mergePolicy: MergePolicy },
  git: GitInventory,
  instances: GitInstance[],
  changes: GitChange[],
  findings: RebuildFinding[],
): Promise<NonNullable<RebuildReport['applied']>> {
  const { sequelize } = deps;
  const result = await sequelize.transaction(async (tx) => {
    const relaid = findings.filter((f): f is Extract<RebuildFinding, { kind: 'org-layout' }> => f.kind === 'org-layout');
    for (const f of relaid) await sequelize.query('UPDATE organizations SET tenant_layout = $layout WHERE slug = $org', { bind: { org: f.org, layout: f.git }, transaction: tx });
    // Projects by the label the objects carry (the org's default where none).
    const projects = [...new Set(instances.map((i) => `${i.org}\u0000${i.project ?? 'default'}`))].map((key) => key.split('\u0000') as [string, string]);
    const created = await sequelize.query<{ id: string }>(
      `INSERT INTO projects (organization_id, slug, name)
       SELECT o.id, p.project, p.project FROM jsonb_to_recordset($projects::jsonb) AS p(org text, project text) JOIN organizations o ON o.slug = p.org
       WHERE NOT EXISTS (SELECT 1 FROM projects x WHERE x.organization_id = o.id AND x.slug = p.project)
       RETURNING id`,
      { type: QueryTypes.SELECT, bind: { projects: JSON.stringify(projects.map(([org, project]) => ({ org, project }))) }, transaction: tx },
    );
    const firstChange = new Map<string, GitChange>();
    for (const c of git.changes) if (c.instanceId && !firstChange.has(c.instanceId)) firstChange.set(c.instanceId, c);
    // Present ones are derived by the full read below. One main no longer holds is leaving
    // ('deleting', as deriveInstanceState has it for an instance removed from main) until Argo CD
    // says its Application is gone, which the reconciler reads next; unless its name is held by
    // another one since (one path, one instance: it yielded, and is deleted).
    const live = await sequelize.query<{ org: string; name: string }>("SELECT o.slug AS org, i.name FROM instances i JOIN organizations o ON o.id = i.organization_id WHERE i.state <> 'deleted'", { type: QueryTypes.SELECT, transaction: tx });
    const taken = new Set([...live.map((r) => `${r.org}/${r.name}`), ...[...git.instances.values()].filter((i) => i.present).map((i) => `${i.org}/${i.name}`)]);
    const latestAbsent = new Map<string, GitInstance>();
    const createdAt = (i: GitInstance) => firstChange.get(i.id)?.authoredAt ?? '';
    for (const i of instances) {
      const key = `${i.org}/${i.name}`;
      if (!i.present && !taken.has(key) && (!latestAbsent.has(key) || createdAt(latestAbsent.get(key)!) < createdAt(i))) latestAbsent.set(key, i);
    }
    const rows = instances.map((i) => ({
      id: i.id,
      org: i.org,
      project: i.project ?? 'default',
      name: i.name,
      offering: i.spec!.offering,
      version: i.spec!.version,
      parameters: i.spec!.parameters,
      present: i.present,
      state: i.present ? 'syncing' : latestAbsent.get(`${i.org}/${i.name}`) === i ? 'deleting' : 'deleted',
      createdBy: firstChange.get(i.id)?.requestedBy ?? 'rebuild',
      createdAt: firstChange.get(i.id)?.authoredAt ?? new Date().toISOString(),
    }));
    const inserted = await sequelize.query<{ id: string }>(
      `INSERT INTO instances (id, organization_id, project_id, offering_version_id, name, parameters, state, desired_state, created_by, created_at,
                              observed_state, observed_offering_version_id, observed_parameters, ever_present, health)
       SELECT r.id, o.id, p.id, v.id, r.name, r.parameters, r.state::instance_state,
              CASE WHEN r.present THEN 'present' ELSE 'absent' END, r."createdBy", r."createdAt", 'absent', v.id, r.parameters, true, CASE WHEN r.state = 'deleted' THEN 'gone' ELSE 'unknown' END
         FROM jsonb_to_recordset($rows::jsonb) AS r(id uuid, org text, project text, name text, offering text, version text, parameters jsonb, present boolean, state text, "createdBy" text, "createdAt" timestamptz)
         JOIN organizations o ON o.slug = r.org
         JOIN projects p ON p.organization_id = o.id AND p.slug = r.project
         JOIN offerings f ON f.slug = r.offering JOIN offering_versions v ON v.offering_id = f.id AND v.version = r.version
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      { type: QueryTypes.SELECT, bind: { rows: JSON.stringify(rows) }, transaction: tx },
    );
    const insertedChanges = await sequelize.query<{ id: string }>(
      `INSERT INTO change_requests (id, kind, status, organization_id, instance_id, payload, requested_by, merge_policy, commit_sha, reason, created_at, updated_at)
       SELECT c.id, c.kind::change_kind, 'merged', o.id, i.id,
              -- The payload as far as Git tells it: the instance as it last stood, and where it came from.
              CASE WHEN i.id IS NULL THEN jsonb_build_object('org', c.org, 'orgName', o.name, 'keycloakGroup', o.keycloak_group)
                   WHEN c.kind = 'instance.delete' THEN jsonb_build_object('org', c.org, 'project', p.slug, 'instanceName', i.name, 'offering', f.slug, 'role', f.role)
                   ELSE jsonb_build_object('org', c.org, 'project', p.slug, 'instanceName', i.name, 'offering', f.slug, 'role', f.role, 'version', v.version, 'templatePath', v.template_path, 'parameters', i.parameters)
              END || jsonb_build_object('rebuiltFrom', c."commitSha"),
              c."requestedBy", $policy::merge_policy, c."commitSha", c.reason, c."authoredAt", c."authoredAt"
         FROM jsonb_to_recordset($changes::jsonb) AS c(id uuid, kind text, org text, "instanceId" uuid, "requestedBy" text, reason text, "commitSha" text, "authoredAt" timestamptz)
         JOIN organizations o ON o.slug = c.org
         LEFT JOIN instances i ON i.id = c."instanceId"
         LEFT JOIN projects p ON p.id = i.project_id
         LEFT JOIN offering_versions v ON v.id = i.offering_version_id
         LEFT JOIN offerings f ON f.id = v.offering_id
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      { type: QueryTypes.SELECT, bind: { changes: JSON.stringify(changes), policy: deps.mergePolicy }, transaction: tx },
    );
    // Each instance's latest change, from its history.
    await sequelize.query(
      `UPDATE instances i SET last_change_id = latest.id FROM (
         SELECT DISTINCT ON (instance_id) instance_id, id FROM change_requests WHERE instance_id = ANY($ids) ORDER BY instance_id, created_at DESC, id DESC
       ) latest WHERE latest.instance_id = i.id`,
      { bind: { ids: inserted.map((r) => r.id) }, transaction: tx },
    );
    // The next read of main is a full one (as after a force-push): every directory is read again.
    await sequelize.query('DELETE FROM base_branch_heads WHERE branch = $branch', { bind: { branch: deps.repository.baseBranch }, transaction: tx });
    return { organizationsRelaid: relaid.length, projects: created.length, instances: inserted.length, changes: insertedChanges.length };
  });
  await convergeToBaseBranch({ sequelize, repository: deps.repository, mergePolicy: deps.mergePolicy });
  return result;
}

/** Instances the ledger names that the instances table lacks (after a partial loss, before a restore). */
async function ledgerOrphans(sequelize: Sequelize): Promise<{ instanceId: string; table: string; rows: number }[]> {
  const rows = await sequelize.query<{ instance_id: string; table: string; rows: string }>(
    // A setup-fee hold names its instance by reference (holdSetupFee).
    `SELECT reference::uuid AS instance_id, 'billing_authorizations' AS table, count(*) AS rows FROM billing_authorizations a
      WHERE reference ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = a.reference::uuid) GROUP BY reference
     UNION ALL
     SELECT instance_id, 'ledger_transfers', count(*) FROM ledger_transfers t WHERE instance_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = t.instance_id) GROUP BY instance_id
     UNION ALL
     SELECT instance_id, 'metered_hours', count(*) FROM metered_hours m WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = m.instance_id) GROUP BY instance_id`,
    { type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({ instanceId: r.instance_id, table: r.table, rows: Number(r.rows) }));
}
