import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError } from '../errors.ts';
import { requireOrgAccess } from './organization-access.ts';
import type { Principal } from './principal.ts';

export interface Team {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
}

interface TeamRow { id: string; slug: string; name: string; created_at: Date }

const present = (row: TeamRow): Team => ({ id: row.id, slug: row.slug, name: row.name, createdAt: row.created_at.toISOString() });

export async function listTeams(sequelize: Sequelize, principal: Principal, orgSlug: string): Promise<Team[]> {
  const access = await requireOrgAccess(sequelize, undefined, principal, orgSlug, 'read');
  const rows = await sequelize.query<TeamRow>('SELECT id, slug, name, created_at FROM teams WHERE organization_id = :org ORDER BY created_at, slug', {
    type: QueryTypes.SELECT,
    replacements: { org: access.organizationId },
  });
  return rows.map(present);
}

/** Owners only; a taken slug is 409. */
export async function createTeam(sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, input: { slug: string; name?: string }): Promise<Team> {
  const access = await requireOrgAccess(sequelize, tx, principal, orgSlug, 'administer');
  const [row] = await sequelize.query<TeamRow>(
    `INSERT INTO teams (organization_id, slug, name) VALUES (:org, :slug, :name)
     ON CONFLICT (organization_id, slug) DO NOTHING RETURNING id, slug, name, created_at`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { org: access.organizationId, slug: input.slug, name: input.name ?? input.slug } },
  );
  if (!row) throw new ConflictError('team-exists', `Team ${input.slug} already exists in ${orgSlug}.`);
  return present(row);
}
