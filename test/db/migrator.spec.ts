import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createMigrator, migrate } from '../../src/db/migrator.ts';
import { createScratchDatabase } from '../support/database.ts';

describe('migrations', () => {
  it('run once when several replicas start at the same time', async () => {
    const scratch = await createScratchDatabase('migrate');
    const logger = createLogger('silent');
    const replicas = Array.from({ length: 4 }, () => createSequelize({ url: scratch.url, poolMax: 2, logger }));
    try {
      const results = await Promise.all(replicas.map((sequelize) => migrate(scratch.url, sequelize, logger)));
      const all = await createMigrator(replicas[0]!, logger).executed();
      assert.ok(all.length > 0);
      // Exactly one replica applied everything; the others found nothing to do.
      assert.deepEqual(results.map((r) => r.length).sort(), [0, 0, 0, all.length]);
      const rows = await replicas[0]!.query<{ name: string }>('SELECT name FROM schema_migrations', { type: QueryTypes.SELECT });
      assert.equal(rows.length, all.length);
    } finally {
      await Promise.all(replicas.map((s) => s.close()));
      await scratch.drop();
    }
  });

  /** A migrator on a scratch database of its own, closed and dropped afterwards. */
  async function withScratchMigrator(label: string, work: (migrator: ReturnType<typeof createMigrator>, sequelize: Sequelize) => Promise<void>): Promise<void> {
    const scratch = await createScratchDatabase(label);
    const logger = createLogger('silent');
    const sequelize = createSequelize({ url: scratch.url, poolMax: 2, logger });
    try {
      await work(createMigrator(sequelize, logger), sequelize);
    } finally {
      await sequelize.close();
      await scratch.drop();
    }
  }

  it('can be reverted and re-applied', () =>
    withScratchMigrator('revert', async (migrator) => {
      await migrator.up();
      await migrator.down({ to: 0 });
      assert.equal((await migrator.executed()).length, 0);
      await migrator.up();
      assert.equal((await migrator.pending()).length, 0);
    }));

  it('refuses, naming them, existing slugs that break the rules of generated names, and then holds them', () =>
    withScratchMigrator('names', async (migrator, sequelize) => {
      await migrator.up({ to: '2026.12.02T04.00.00.convergence.ts' });
      const long = 'o'.repeat(31);
      await sequelize.query(`INSERT INTO organizations (slug, name, keycloak_group) VALUES ('bob--x', 'b', '/orgs/b'), ('${long}', 'l', '/orgs/l'), ('fine', 'f', '/orgs/f')`);
      await assert.rejects(migrator.up(), (error: Error) => {
        assert.match(error.message, /2 existing slug\(s\) break the rules/);
        assert.match(error.message, /organizations\.slug "bob--x"/);
        assert.ok(error.message.includes(long), error.message);
        return true;
      });
      assert.ok((await migrator.pending()).some((m) => m.name === '2026.12.02T16.00.00.generated-names.ts'), 'nothing applied');
      await sequelize.query(`UPDATE organizations SET slug = 'bob-x' WHERE slug = 'bob--x'; DELETE FROM organizations WHERE slug = '${long}'`);
      await migrator.up();
      await assert.rejects(sequelize.query(`INSERT INTO organizations (slug, name, keycloak_group) VALUES ('a--b', 'a', '/orgs/a')`), /organizations_slug_for_generated_names/);
    }));
});
