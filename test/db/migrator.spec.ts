import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
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

  it('can be reverted and re-applied', async () => {
    const scratch = await createScratchDatabase('revert');
    const logger = createLogger('silent');
    const sequelize = createSequelize({ url: scratch.url, poolMax: 2, logger });
    try {
      const migrator = createMigrator(sequelize, logger);
      await migrator.up();
      await migrator.down({ to: 0 });
      assert.equal((await migrator.executed()).length, 0);
      await migrator.up();
      assert.equal((await migrator.pending()).length, 0);
    } finally {
      await sequelize.close();
      await scratch.drop();
    }
  });
});
