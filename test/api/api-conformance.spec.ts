import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { buildOpenApiDocument } from '../../src/api/openapi.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

/**
 * Walks every workspace, catalog, instance and billing operation once through the harness, which checks
 * each real response against the OpenAPI document, and then asserts none was left out.
 */
describe('workspace, catalog and instance API against its OpenAPI document', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => {
    api = await startApiHarness();
  });
  after(() => api.close());

  it('is a valid OpenAPI 3.1 document', async () => {
    const document = buildOpenApiDocument(api.routes, { title: 'control-plane', version: '0', description: 'test' });
    await SwaggerParser.validate(structuredClone(document) as never);
  });

  it('answers every operation as documented', async () => {
    const token = await api.tokenFor(uniqueUser('walker'));
    const admin = await api.tokenFor(uniqueUser('root', { platformAdmin: true }));
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    await api.call('GET', `/orgs/${org}`, { token });
    await api.call('GET', `/orgs/${org}/projects`, { token });
    await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: 'walk' } });
    await api.call('GET', `/orgs/${org}/teams`, { token });
    await api.call('POST', `/orgs/${org}/teams`, { token, body: { slug: 'walkers' } });
    await api.call('GET', `/orgs/${org}/members`, { token });
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: 'someone-else', role: 'member', team: 'walkers' } });
    await api.call('DELETE', `/orgs/${org}/members/someone-else`, { token });

    const slug = `w${Date.now().toString(36).slice(-8)}`;
    await api.call('GET', '/offerings', { token });
    // A fixture offering (test/fixtures/offerings): a version is published only where templates render.
    const offering = 'publish-demo';
    await api.call('POST', '/offerings', { token: admin, body: { slug: offering, role: 'studio', name: 'Walk', description: 'Walk test.' } });
    await api.call('GET', `/offerings/${offering}`, { token });
    const schema = { type: 'object', additionalProperties: false, properties: { replicas: { type: 'integer', default: 1 } } };
    await api.call('POST', `/offerings/${offering}/versions`, { token: admin, body: { version: '1.0.0', parametersSchema: schema, pricing: { currency: 'EUR', setupFee: 1, hourlyRate: 1 } } });
    await api.call('PATCH', `/offerings/${offering}/versions/1.0.0`, { token: admin, body: { status: 'deprecated' } });

    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'walk' }, headers: { 'Idempotency-Key': `walk-${slug}` } });
    const id = created.body.id as string;
    await api.call('GET', '/instances', { token });
    await api.call('GET', `/instances/${id}`, { token });
    await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { replicas: 3 } } }); // 409: still requested
    await api.call('DELETE', `/instances/${id}`, { token });
    // A few error answers, checked against the Problem schema.
    await api.call('GET', '/instances/00000000-0000-4000-8000-000000000000', { token });
    await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'Bad' } });

    const walletId = ((await api.call('GET', `/orgs/${org}`, { token })).body.wallets as { id: string }[])[0]!.id;
    await api.call('GET', `/billing/wallets/${walletId}`, { token });
    await api.call('POST', `/billing/wallets/${walletId}/credits`, { token: admin, body: { amount: 100, reason: 'walk' } });
    await api.call('GET', `/billing/wallets/${walletId}/entries?limit=1`, { token });
    await api.call('GET', `/billing/wallets/${walletId}/authorizations?status=pending`, { token });
    await api.call('GET', `/billing/wallets/${walletId}/statement`, { token });
    await api.call('GET', `/billing/wallets/${walletId}/statement?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, { token }); // 422
    const minted = await api.call('POST', '/me/tokens', { token, body: { name: `walk-${slug}` } });
    await api.call('GET', '/me/tokens', { token });
    await api.call('DELETE', `/me/tokens/${String(minted.body.id)}`, { token });
    const orgToken = await api.call('POST', `/orgs/${org}/tokens`, { token, body: { name: 'walk', role: 'viewer' } });
    await api.call('GET', `/orgs/${org}/tokens`, { token });
    await api.call('DELETE', `/orgs/${org}/tokens/${String(orgToken.body.id)}`, { token });
    const hold = await api.call('POST', '/billing/authorize', { token, body: { org, amount: 10, currency: 'EUR', reference: 'walk' }, headers: { 'Idempotency-Key': `hold-${slug}` } });
    await api.call('POST', '/billing/settle', { token, body: { authorizationId: hold.body.id, amount: 5 } });
    await api.call('GET', `/billing/authorizations/${hold.body.id as string}`, { token });
    await api.call('POST', '/billing/void', { token, body: { authorizationId: hold.body.id } }); // 409: already settled
    await api.call('POST', '/billing/authorize', { token, body: { org, amount: 10 ** 12, currency: 'EUR' } }); // 402

    const missing = api.routes.map((r) => r.operationId).filter((id) => !api.exercised.has(id));
    assert.deepEqual(missing, []);
  });
});
