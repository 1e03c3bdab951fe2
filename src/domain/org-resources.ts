import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError } from '../errors.ts';
import { requireOrgAccess, type OrgAction } from './organization-access.ts';
import type { Principal } from './principal.ts';

/** A project or a team: a named thing inside an org, with a slug unique in it. */
export interface OrgResource {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
}

interface ResourceKind {
  table: 'projects' | 'teams';
  noun: string;
  /** Who may add one: owners and members add projects, only owners add teams. */
  createAction: OrgAction;
}

const PROJECTS: ResourceKind = { table: 'projects', noun: 'project', createAction: 'write' };
const TEAMS: ResourceKind = { table: 'teams', noun: 'team', createAction: 'administer' };

interface ResourceRow { id: string; slug: string; name: string; created_at: Date }

const present = (row: ResourceRow): OrgResource => ({ id: row.id, slug: row.slug, name: row.name, createdAt: row.created_at.toISOString() });

async function listResources(kind: ResourceKind, sequelize: Sequelize, principal: Principal, orgSlug: string): Promise<OrgResource[]> {
  const access = await requireOrgAccess(sequelize, undefined, principal, orgSlug, 'read');
  const rows = await sequelize.query<ResourceRow>(`SELECT id, slug, name, created_at FROM ${kind.table} WHERE organization_id = :org ORDER BY created_at, slug`, {
    type: QueryTypes.SELECT,
    replacements: { org: access.organizationId },
  });
  return rows.map(present);
}

/** A taken slug is 409. */
async function createResource(kind: ResourceKind, sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, input: { slug: string; name?: string }): Promise<OrgResource> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, kind.createAction);
  const [row] = await sequelize.query<ResourceRow>(
    `INSERT INTO ${kind.table} (organization_id, slug, name) VALUES (:org, :slug, :name)
     ON CONFLICT (organization_id, slug) DO NOTHING RETURNING id, slug, name, created_at`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { org: access.organizationId, slug: input.slug, name: input.name ?? input.slug } },
  );
  if (!row) throw new ConflictError(`${kind.noun}-exists`, `A ${kind.noun} ${input.slug} already exists in ${orgSlug}.`);
  return present(row);
}

export const listProjects = (sequelize: Sequelize, principal: Principal, orgSlug: string) => listResources(PROJECTS, sequelize, principal, orgSlug);
export const createProject = (sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, input: { slug: string; name?: string }) =>
  createResource(PROJECTS, sequelize, tx, principal, orgSlug, input);
export const listTeams = (sequelize: Sequelize, principal: Principal, orgSlug: string) => listResources(TEAMS, sequelize, principal, orgSlug);
export const createTeam = (sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, input: { slug: string; name?: string }) =>
  createResource(TEAMS, sequelize, tx, principal, orgSlug, input);
