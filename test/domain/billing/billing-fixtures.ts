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
