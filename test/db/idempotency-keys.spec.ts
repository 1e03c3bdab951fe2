import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { deleteExpiredIdempotencyKeys } from '../../src/db/idempotency-keys.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';

describe('Idempotency-Key retention', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize(2);
  });
  after(() => sequelize.close());

  it('forgets keys past the retention, in batches, and keeps the fresh ones', async () => {
    const principal = `retention-${randomUUID()}`;
    await sequelize.query(
      `INSERT INTO idempotency_keys (principal, key, method, path, request_hash, created_at)
       SELECT :principal, 'old-' || n, 'POST', '/instances', repeat('0', 64), now() - interval '25 hours' FROM generate_series(1, 7) n
       UNION ALL SELECT :principal, 'fresh', 'POST', '/instances', repeat('0', 64), now() - interval '23 hours'`,
      { type: QueryTypes.INSERT, replacements: { principal } },
    );
    const deleted = await deleteExpiredIdempotencyKeys(sequelize, 24, 3);
    assert.ok(deleted >= 7, `deleted ${deleted}`);
    const left = await sequelize.query<{ key: string }>('SELECT key FROM idempotency_keys WHERE principal = :principal', { type: QueryTypes.SELECT, replacements: { principal } });
    assert.deepEqual(left.map((r) => r.key), ['fresh']);
  });
});
