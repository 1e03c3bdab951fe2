import assert from 'node:assert/strict';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { CREATE_ROUND_TRIPS } from '../bench/api-throughput.ts';
import { useSpecDatabase } from '../support/database.ts';

describe('POST /instances: database round trips', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => {
    api = await startApiHarness();
  });
  after(() => api.close());

  // The create path's cost on a busy machine is mostly its statements; the benchmark compares
  // it with this many plain round trips, so a change that adds one must show up here.
  it(`makes ${CREATE_ROUND_TRIPS} statements, BEGIN and COMMIT included, with the wallet locked last`, async () => {
    const token = await api.tokenFor(uniqueUser('counted'));
    const workspace = await api.call('POST', '/orgs/auto', { token });
    const statements: string[] = [];
    const record = (_options: unknown, query: object) => {
      statements.push((query as { sql?: string }).sql ?? '?');
    };
    api.sequelize.addHook('afterQuery', 'count', record);
    try {
      const response = await api.call('POST', '/instances', { token, body: { org: workspace.body.slug, offering: 'studio', name: 'counted' } });
      assert.equal(response.status, 202);
    } finally {
      api.sequelize.removeHook('afterQuery', 'count');
    }
    assert.equal(statements.length, CREATE_ROUND_TRIPS, statements.map((s) => s.replace(/\s+/g, ' ').slice(0, 80)).join('\n'));
    assert.match(statements.at(-3)!, /FOR UPDATE OF w/);
  });
});
