import assert from 'node:assert/strict';
import { exportSPKI, SignJWT } from 'jose';
import { QueryTypes } from 'sequelize';
import { hashApiToken } from '../../src/db/api-tokens.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

describe('authentication', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => {
    api = await startApiHarness();
  });
  after(() => api.close());

  const claims = (sub: string, extra: Record<string, unknown> = {}) => ({ sub, preferred_username: sub, email: `${sub}@example.test`, ...extra });
  const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it('accepts a JWT signed by the realm key, with the pinned issuer and audience', async () => {
    const token = await api.issuer.sign(claims('jwt-user'));
    const response = await api.call('GET', '/offerings', { token });
    assert.equal(response.status, 200);
  });

  it('accepts ES256 as well (both are pinned by default)', async () => {
    const token = await api.issuer.sign(claims('ec-user'), { alg: 'ES256' });
    assert.equal((await api.call('GET', '/offerings', { token })).status, 200);
  });

  const refused: [string, () => Promise<string>][] = [
    ['a wrong issuer', () => api.issuer.sign(claims('u1'), { issuer: 'https://evil.example/realms/gsv' })],
    ['a wrong audience', () => api.issuer.sign(claims('u2'), { audience: 'someone-else' })],
    ['an expired token', () => api.issuer.sign(claims('u3'), { expiresIn: Math.floor(Date.now() / 1000) - 120 })],
    [
      'alg none',
      async () => {
        const now = Math.floor(Date.now() / 1000);
        return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ ...claims('u4'), iss: api.issuer.issuer, aud: api.issuer.audience, iat: now, exp: now + 300 })}.`;
      },
    ],
    [
      'HS256 signed with the public key',
      async () => {
        const secret = new TextEncoder().encode(await exportSPKI(api.issuer.publicKey));
        return new SignJWT(claims('u5'))
          .setProtectedHeader({ alg: 'HS256', kid: 'test-key' })
          .setIssuedAt()
          .setIssuer(api.issuer.issuer)
          .setAudience(api.issuer.audience)
          .setExpirationTime('5m')
          .sign(secret);
      },
    ],
    ['a token signed by another key', async () => `${(await api.issuer.sign(claims('u6'))).split('.').slice(0, 2).join('.')}.${Buffer.from('forged').toString('base64url')}`],
    ['no sub claim', () => api.issuer.sign({ preferred_username: 'nosub' })],
    ['an unknown API token', async () => 'cpt_unknown-token-value'],
  ];
  for (const [name, make] of refused) {
    it(`refuses ${name} with 401 problem+json`, async () => {
      const response = await api.call('GET', '/offerings', { token: await make() });
      assert.equal(response.status, 401);
      assert.equal(response.body.code, 'unauthorized');
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
    });
  }

  it('refuses a request without a bearer', async () => {
    const response = await api.call('GET', '/offerings');
    assert.equal(response.status, 401);
  });

  it('accepts a live API token and refuses it once revoked', async () => {
    const token = await api.tokenFor(uniqueUser('robot'));
    assert.equal((await api.call('GET', '/offerings', { token })).status, 200);
    const [used] = await api.sequelize.query<{ used: boolean }>('SELECT last_used_at IS NOT NULL AS used FROM api_tokens WHERE token_hash = :hash', {
      type: QueryTypes.SELECT,
      replacements: { hash: hashApiToken(token) },
    });
    assert.equal(used!.used, true);
    await api.sequelize.query('UPDATE api_tokens SET revoked_at = now() WHERE token_hash = :hash', { type: QueryTypes.UPDATE, replacements: { hash: hashApiToken(token) } });
    assert.equal((await api.call('GET', '/offerings', { token })).status, 401);
  });

  it('takes platform admin from realm_access.roles; others get 403 on admin routes', async () => {
    const body = { slug: `a${Date.now().toString(36).slice(-8)}`, role: 'extra', name: 'Extra', description: 'An extra offering.' };
    const user = await api.issuer.sign(claims('plain-user', { realm_access: { roles: ['offline_access'] } }));
    assert.equal((await api.call('POST', '/offerings', { token: user, body })).status, 403);
    const admin = await api.issuer.sign(claims('admin-user', { realm_access: { roles: ['platform-admin'] } }));
    const created = await api.call('POST', '/offerings', { token: admin, body });
    assert.equal(created.status, 201);
    assert.equal(created.body.slug, body.slug);
  });
});
