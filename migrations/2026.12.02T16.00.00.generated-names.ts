import { QueryTypes } from 'sequelize';
import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Collision-free generated names (issue 12; README "Generated names"): generated names join
 * slugs with `--`, so no slug may contain it; org slugs are at most 30 characters and instance
 * names at most 25, so that `apps--<org>--<name>` fits the 63 of a label value. The rules are
 * written out here rather than imported from src/gitops/tenant-paths.ts: an applied migration
 * must keep meaning what it meant.
 *
 * Rows that break them are refused, by name, rather than renamed: a slug is in paths in
 * gsv-gitops and in names in the cluster, and changing it here alone would orphan both.
 */
const SLUG = '^[a-z0-9]+(-[a-z0-9]+)*$';

const RULES = [
  { table: 'organizations', column: 'slug', max: 30 },
  { table: 'instances', column: 'name', max: 25 },
  { table: 'projects', column: 'slug', max: 40 },
  { table: 'teams', column: 'slug', max: 40 },
  { table: 'offerings', column: 'slug', max: 16 },
  { table: 'offerings', column: 'role', max: 16 },
];

const constraintOf = (rule: (typeof RULES)[number]) => `${rule.table}_${rule.column}_for_generated_names`;
const checkOf = (rule: (typeof RULES)[number]) => `length(${rule.column}) <= ${rule.max} AND ${rule.column} ~ '${SLUG}'`;

export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  const offending = await sequelize.query<{ at: string; value: string }>(
    RULES.map((rule) => `SELECT '${rule.table}.${rule.column}' AS at, ${rule.column} AS value FROM ${rule.table} WHERE NOT (${checkOf(rule)})`).join(' UNION ALL ') + ' ORDER BY 1, 2',
    { type: QueryTypes.SELECT },
  );
  if (offending.length > 0) {
    const listed = offending.slice(0, 20).map((row) => `${row.at} ${JSON.stringify(row.value)}`).join(', ');
    throw new Error(
      `${offending.length} existing slug(s) break the rules for collision-free generated names (no "--"; org slugs at most 30 characters, ` +
        `instance names at most 25): ${listed}${offending.length > 20 ? ', …' : ''}. Nothing was changed. Rename them (and their tenants/ ` +
        `directories and Argo CD objects), or remove them, then start the service again.`,
    );
  }
  await sequelize.query(RULES.map((rule) => `ALTER TABLE ${rule.table} ADD CONSTRAINT ${constraintOf(rule)} CHECK (${checkOf(rule)});`).join('\n'));
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(RULES.map((rule) => `ALTER TABLE ${rule.table} DROP CONSTRAINT ${constraintOf(rule)};`).join('\n'));
}
