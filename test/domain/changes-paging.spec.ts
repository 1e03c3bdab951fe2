import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { listChanges } from '../../src/domain/changes/change-views.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { insertOrganization } from '../support/change-fixtures.ts';

describe('GET /changes paging', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());

  it('loses no change created within the same millisecond at a page boundary', async () => {
    const org = await insertOrganization(sequelize);
    // Three changes 100 µs apart: a cursor rounded to milliseconds would skip the last two.
    const inserted = await sequelize.query<{ id: string }>(
      `INSERT INTO change_requests (kind, organization_id, payload, requested_by, merge_policy, status, created_at)
       SELECT 'workspace.create', :org, '{}', 'paging-test', 'pull-request', 'failed',
              TIMESTAMPTZ '2026-01-01 00:00:00.000100+00' + make_interval(secs => n * 0.0001)
       FROM generate_series(0, 2) AS n RETURNING id`,
      { type: QueryTypes.SELECT, replacements: { org: org.orgId } },
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listChanges(sequelize, { org: org.orgSlug, limit: 1, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    assert.deepEqual([...seen].sort(), inserted.map((row) => row.id).sort());
    assert.equal(seen.length, 3);
  });
});
