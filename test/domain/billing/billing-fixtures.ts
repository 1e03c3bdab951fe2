import { randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { LedgerDeps } from '../../../src/domain/billing/ledger.ts';

/** A clock the test moves by hand. */
export interface TestClock {
  now(): Date;
  set(at: Date | string): void;
  advance(ms: number): void;
}

export function testClock(start = '2026-01-05T10:00:00Z'): TestClock {
  let current = new Date(start);
  return {
    now: () => current,
    set: (at) => (current = new Date(at)),
    advance: (ms) => (current = new Date(current.getTime() + ms)),
  };
}

export function ledgerDeps(sequelize: Sequelize, clock: TestClock): LedgerDeps {
  return { sequelize, now: () => clock.now() };
}

export async function inTransaction<T>(sequelize: Sequelize, work: (tx: Transaction) => Promise<T>): Promise<T> {
  return sequelize.transaction(work);
}

/** An organization with a unique slug; nothing else of the workspace is needed by the ledger. */
export async function createOrganization(sequelize: Sequelize): Promise<{ id: string; slug: string }> {
  const slug = `billing-${randomBytes(5).toString('hex')}`;
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO organizations (slug, name, keycloak_group) VALUES (:slug, :slug, :group) RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { slug, group: `/orgs/${slug}` } },
  );
  return { id: row!.id, slug };
}

/** An offering version with its own prices (version names are unique per call). */
export async function pricedOfferingVersion(sequelize: Sequelize, prices: { setupFee?: number; hourlyRate?: number; currency?: string }): Promise<string> {
  await sequelize.query(
    `INSERT INTO offerings (slug, role, name, description) VALUES ('billed', 'studio', 'Billed', 'Billing tests') ON CONFLICT (slug) DO NOTHING`,
  );
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO offering_versions (offering_id, version, template_path, parameters_schema, currency, setup_fee_minor, hourly_rate_minor)
     SELECT id, :version, 'templates/offerings/studio/1.0.0', '{}', :currency, :setupFee, :hourlyRate FROM offerings WHERE slug = 'billed'
     RETURNING id`,
    {
      type: QueryTypes.SELECT,
      replacements: {
        version: `1.0.0-${randomBytes(4).toString('hex')}`,
        currency: prices.currency ?? 'EUR',
        setupFee: prices.setupFee ?? 0,
        hourlyRate: prices.hourlyRate ?? 0,
      },
    },
  );
  return row!.id;
}

/**
 * An instance that became ready at `readyAt`: main holds it, Argo CD said Healthy, and its
 * running period (metering's clock) started then; the event records it.
 */
export async function readyInstance(sequelize: Sequelize, organizationId: string, offeringVersionId: string, readyAt: Date): Promise<string> {
  const [project] = await sequelize.query<{ id: string }>(
    `INSERT INTO projects (organization_id, slug, name) VALUES (:organizationId, 'default', 'Default')
     ON CONFLICT (organization_id, slug) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { organizationId } },
  );
  const [instance] = await sequelize.query<{ id: string }>(
    `INSERT INTO instances (organization_id, project_id, offering_version_id, name, state, created_by,
       observed_state, ever_present, observed_offering_version_id, health, running_since)
     VALUES (:organizationId, :projectId, :offeringVersionId, :name, 'ready', 'tester', 'present', true, :offeringVersionId, 'healthy', :readyAt) RETURNING id`,
    {
      type: QueryTypes.SELECT,
      replacements: { organizationId, projectId: project!.id, offeringVersionId, readyAt, name: `i-${randomBytes(4).toString('hex')}` },
    },
  );
  await sequelize.query(
    `INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, created_at) VALUES (:id, 'syncing', 'ready', 'sync.healthy', 'argocd', :readyAt)`,
    { replacements: { id: instance!.id, readyAt } },
  );
  return instance!.id;
}
