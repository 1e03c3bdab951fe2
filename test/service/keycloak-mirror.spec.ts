import assert from 'node:assert/strict';
import { startServiceWithWorkspace, type InProcessService } from '../support/in-process-service.ts';
import type { Caller } from '../support/scratch-service.ts';
import { KeycloakDouble } from '../support/keycloak-double.ts';

/** The membership mirror as startService wires it from KEYCLOAK_* (the lower layers have specs of their own). */
describe('service: KEYCLOAK_URL set, Keycloak follows membership', function () {
  this.timeout(60_000);
  let keycloak: KeycloakDouble;
  let app: InProcessService;
  let caller: Caller;
  let org: string;

  before(async () => {
    keycloak = await new KeycloakDouble({ clients: [{ clientId: 'cp-mirror', secret: 's3cret-value' }] }).start();
    keycloak.addUser('kcmirror-owner', 'kcmirror-owner');
    ({ app, caller, org } = await startServiceWithWorkspace('kcmirror', {
      KEYCLOAK_URL: keycloak.url,
      KEYCLOAK_REALM: keycloak.realm,
      KEYCLOAK_CLIENT_ID: 'cp-mirror',
      KEYCLOAK_CLIENT_SECRET: 's3cret-value',
    }));
  });
  after(async () => {
    await app?.close();
    await keycloak.close();
  });

  async function until(what: string, check: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('creates the org group with its owner, then follows a member in and out', async () => {
    await until('the owner is in the org group', () => keycloak.directGroups('kcmirror-owner').includes(`/orgs/${org}`));
    const member = keycloak.addUser('kcmirror-member');
    const post = (body: unknown) => fetch(`${app.url}/orgs/${org}/members`, { method: 'POST', headers: { ...caller.headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post({ subject: member, role: 'member' })).status, 201);
    await until('the member joined', () => keycloak.directGroups(member).join() === [`/orgs/${org}`, `/orgs/${org}/member`].join());
    assert.equal((await fetch(`${app.url}/orgs/${org}/members/${member}`, { method: 'DELETE', headers: caller.headers })).status, 204);
    await until('the member left', () => keycloak.directGroups(member).length === 0);
    assert.deepEqual(keycloak.violations, []);
  });
});
