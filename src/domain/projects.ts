import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError } from '../errors.ts';
import { requireOrgAccess } from './organization-access.ts';
import type { Principal } from './principal.ts';

export interface Project {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
}

interface ProjectRow { id: string; slug: string; name: string; created_at: Date }

const present = (row: ProjectRow): Project => ({ id: row.id, slug: row.slug, name: row.name, createdAt: row.created_at.toISOString() });

export async function listProjects(sequelize: Sequelize, principal: Principal, orgSlug: string): Promise<Project[]> {
  const access = await requireOrgAccess(sequelize, undefined, principal, orgSlug, 'read');
  const rows = await sequelize.query<ProjectRow>('SELECT id, slug, name, created_at FROM projects WHERE organization_id = :org ORDER BY created_at, slug', {
    type: QueryTypes.SELECT,
    replacements: { org: access.organizationId },
  });
  return rows.map(present);
}

/** Owners and members may add projects; a taken slug is 409. */
export async function createProject(sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, input: { slug: string; name?: string }): Promise<Project> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, 'write');
  const [row] = await sequelize.query<ProjectRow>(
    `INSERT INTO projects (organization_id, slug, name) VALUES (:org, :slug, :name)
     ON CONFLICT (organization_id, slug) DO NOTHING RETURNING id, slug, name, created_at`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { org: access.organizationId, slug: input.slug, name: input.name ?? input.slug } },
  );
  if (!row) throw new ConflictError('project-exists', `Project ${input.slug} already exists in ${orgSlug}.`);
  return present(row);
}
