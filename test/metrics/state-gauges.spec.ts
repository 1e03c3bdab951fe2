import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { Sequelize } from 'sequelize';
import { readStateCounts } from '../../src/domain/state-gauges.ts';
import { CHANGE_KINDS } from '../../src/domain/changes/change-kinds.ts';
import { registerStateGauges, type StateCounts } from '../../src/metrics.ts';
import { insertChange, insertInstance, insertOrganization } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';

const counts = (overrides: Partial<StateCounts> = {}): StateCounts => ({
  changes: [{ kind: 'instance.create', status: 'pending', count: 2 }],
  instances: [{ state: 'ready', count: 3 }],
  drifted: 1,
  pastProgressDeadline: 2,
  unknownTenantPaths: 4,
  oldestPendingAgeSeconds: 10,
  ...overrides,
});

/** The value of the series `name{labels}` in the exposition text, undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('state gauges (read at scrape time)', () => {
  let clock = 1_000_000;
  const now = () => clock;

  it('expose the counts of one read, shared by every gauge and by scrapes within the cache', async () => {
    const registry = new Registry();
    let reads = 0;
    registerStateGauges(registry, { read: async () => (reads++, counts()), onError: (error) => assert.fail(String(error)), cacheMs: 5_000, now });
    const text = await registry.metrics();
    assert.equal(value(text, 'change_requests{kind="instance.create",status="pending"}'), 2);
    assert.equal(value(text, 'instances{state="ready"}'), 3);
    assert.equal(value(text, 'instances_drifted'), 1);
    assert.equal(value(text, 'instances_past_progress_deadline'), 2);
    assert.equal(value(text, 'unknown_tenant_paths'), 4);
    assert.equal(value(text, 'change_requests_oldest_pending_age_seconds'), 10);
    assert.equal(value(text, 'state_gauges_last_read_timestamp_seconds'), clock / 1000);
    assert.equal(reads, 1);
    // Three scrapers at once, then one 2 s later: still that read; the age grows with the clock.
    await Promise.all([registry.metrics(), registry.metrics(), registry.metrics()]);
    clock += 2_000;
    assert.equal(value(await registry.metrics(), 'change_requests_oldest_pending_age_seconds'), 12);
    assert.equal(reads, 1);
    clock += 3_000;
    await registry.metrics();
    assert.equal(reads, 2);
  });

  it('keep the last values and count the failure when the database does not answer, and never fail the scrape', async () => {
    const registry = new Registry();
    const errors: unknown[] = [];
    let answer: () => Promise<StateCounts> = async () => counts();
    registerStateGauges(registry, { read: () => answer(), onError: (error) => errors.push(error), cacheMs: 5_000, timeoutMs: 50, now });
    await registry.metrics();
    answer = () => Promise.reject(new Error('connect ECONNREFUSED'));
    clock += 5_000;
    let text = await registry.metrics();
    assert.equal(value(text, 'unknown_tenant_paths'), 4);
    assert.equal(value(text, 'state_gauges_read_failures_total'), 1);
    assert.match(String(errors[0]), /ECONNREFUSED/);
    // A read that hangs: the scrape answers after timeoutMs, and no second read starts while it hangs.
    let started = 0;
    let release!: (value: StateCounts) => void;
    answer = () => (started++, new Promise<StateCounts>((resolve) => (release = resolve)));
    clock += 5_000;
    text = await registry.metrics();
    assert.equal(value(text, 'instances{state="ready"}'), 3);
    assert.equal(value(text, 'state_gauges_read_failures_total'), 2);
    clock += 5_000;
    await registry.metrics();
    assert.equal(started, 1);
    // Its late answer is kept.
    release(counts({ drifted: 7 }));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(value(await registry.metrics(), 'instances_drifted'), 7);
  });

  it('say when no read has succeeded yet: no labelled series, last read at 0', async () => {
    const registry = new Registry();
    registerStateGauges(registry, { read: () => Promise.reject(new Error('down')), onError: () => {}, now });
    const text = await registry.metrics();
    assert.doesNotMatch(text, /^instances\{/m);
    assert.equal(value(text, 'state_gauges_last_read_timestamp_seconds'), 0);
    assert.equal(value(text, 'state_gauges_read_failures_total'), 1);
  });
});

describe('readStateCounts', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());

  it('counts changes by kind and watched status, instances by state, drift, unknown paths and the oldest pending change, zeros included', async () => {
    const empty = await readStateCounts(sequelize);
    assert.equal(empty.changes.length, CHANGE_KINDS.length * 4);
    assert.ok(empty.changes.every((c) => c.count === 0));
    assert.equal(empty.instances.length, 11);
    assert.equal(empty.oldestPendingAgeSeconds, 0);

    const org = await insertOrganization(sequelize);
    const a = await insertInstance(sequelize, org, { state: 'ready' });
    const b = await insertInstance(sequelize, org, { state: 'pending_review' });
    await insertChange(sequelize, { kind: 'instance.update', payload: {}, orgId: org.orgId, instanceId: a.instanceId, createdAt: new Date(Date.now() - 120_000) });
    const open = await insertChange(sequelize, { kind: 'instance.create', payload: {}, orgId: org.orgId, instanceId: b.instanceId });
    const merged = await insertChange(sequelize, { kind: 'instance.create', payload: {}, orgId: org.orgId, instanceId: a.instanceId });
    await sequelize.query(`UPDATE change_requests SET status = CASE id WHEN $open THEN 'open' ELSE 'merged' END::change_status WHERE id IN ($open, $merged)`, { bind: { open, merged } });
    await sequelize.query(`UPDATE instances SET drift = 'main holds 1.0.0' WHERE id = $id`, { bind: { id: a.instanceId } });
    await sequelize.query(
      `INSERT INTO unknown_tenant_paths (path, commit_sha, resolved_at) VALUES ('tenants/x/apps/a', 'abc', NULL), ('tenants/x/apps/b', 'abc', now())`,
    );

    const read = await readStateCounts(sequelize);
    const change = (kind: string, status: string) => read.changes.find((c) => c.kind === kind && c.status === status)?.count;
    assert.equal(change('instance.update', 'pending'), 1);
    assert.equal(change('instance.create', 'open'), 1);
    assert.equal(read.changes.reduce((sum, c) => sum + c.count, 0), 2, 'merged is not a watched status');
    assert.equal(read.instances.find((i) => i.state === 'ready')?.count, 1);
    assert.equal(read.instances.find((i) => i.state === 'pending_review')?.count, 1);
    assert.equal(read.drifted, 1);
    assert.equal(read.unknownTenantPaths, 1);
    assert.ok(read.oldestPendingAgeSeconds >= 119 && read.oldestPendingAgeSeconds < 180, String(read.oldestPendingAgeSeconds));
  });
});
