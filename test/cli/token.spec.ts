import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { useSpecDatabase } from '../support/database.ts';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function token(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['src/cli/token.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Machines can call the API (issue 14): the first token of a deployment from a shell
 * (`npm run token`), then tokens minted, listed and revoked through /me/tokens, against the
 * whole service as `startService` wires it.
 */
describe('API tokens: npm run token, and /me/tokens', function () {
  useSpecDatabase();
  this.timeout(60_000);
  let app: InProcessService;
  before(async () => (app = await startInProcessService('tokens', { SYNC_SIMULATOR: 'false' })));
  after(() => app?.close());

  const call = async (method: string, route: string, bearer: string, body?: unknown) => {
    const response = await fetch(`${app.url}${route}`, { method, headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };

  it('prints a first admin token once; it can mint, list and revoke tokens that act as its subject; a revoked token is refused', async () => {
    const env = { DATABASE_URL: app.databaseUrl };
    const minted = await token(['--subject', 'ops', '--name', 'first', '--admin', '--days', '7'], env);
    assert.equal(minted.code, 0, minted.stderr);
    const admin = minted.stdout.trim();
    assert.match(admin, /^cpt_[A-Za-z0-9_-]{43}$/);
    assert.ok(!minted.stderr.includes(admin), 'the secret goes to stdout only');
    assert.equal((await token(['--subject', 'ops', '--name', 'first'], env)).code, 64, 'a live name is not reused');
    assert.equal((await token(['--subject', 'ops'], env)).code, 64);
    assert.equal((await call('GET', '/changes', admin)).status, 200, 'a platform admin');

    const ci = await call('POST', '/me/tokens', admin, { name: 'ci-deploy', expiresInDays: 30 });
    assert.equal(ci.status, 201, JSON.stringify(ci.body));
    assert.equal(ci.body.platformAdmin, false, 'not an admin unless asked');
    const listed = await call('GET', '/me/tokens', ci.body.token as string);
    assert.deepEqual((listed.body.items as { name: string }[]).map((t) => t.name).sort(), ['ci-deploy', 'first']);
    assert.ok(!JSON.stringify(listed.body).includes('cpt_'), 'never a secret in a listing');
    assert.equal((await call('POST', '/me/tokens', admin, { name: 'ci-deploy' })).status, 409);

    const workspace = await call('POST', '/orgs/auto', ci.body.token as string, {});
    assert.ok(workspace.status === 201 || workspace.status === 200, JSON.stringify(workspace.body));
    const escalate = await call('POST', '/me/tokens', ci.body.token as string, { name: 'escalate', platformAdmin: true });
    assert.equal(escalate.status, 403, 'a token that is not an admin\'s cannot mint one that is');
    assert.equal((await call('POST', '/me/tokens', admin, { name: 'second-admin', platformAdmin: true })).body.platformAdmin, true);

    const stranger = (await token(['--subject', 'stranger', '--name', 'mine'], env)).stdout.trim();
    assert.equal((await call('POST', '/me/tokens', stranger, { name: 'boss', platformAdmin: true })).status, 403);
    assert.equal((await call('DELETE', `/me/tokens/${String(ci.body.id)}`, stranger)).status, 404, "another subject's token is not there for it");
    assert.equal((await call('DELETE', `/me/tokens/${String(ci.body.id)}`, admin)).status, 204);
    assert.equal((await call('DELETE', `/me/tokens/${String(ci.body.id)}`, admin)).status, 204, 'again: the same answer');
    assert.equal((await call('GET', '/me/tokens', ci.body.token as string)).status, 401, 'revoked');
  });
});
