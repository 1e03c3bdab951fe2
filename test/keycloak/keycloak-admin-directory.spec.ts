import assert from 'node:assert/strict';
import { KeycloakAdminDirectory } from '../../src/keycloak/keycloak-admin-directory.ts';
import { KeycloakGroupGoneError, KeycloakUnavailableError } from '../../src/keycloak/keycloak-directory.ts';
import { KeycloakDouble } from '../support/keycloak-double.ts';

describe('KeycloakAdminDirectory against the Keycloak double', () => {
  let keycloak: KeycloakDouble;
  let directory: KeycloakAdminDirectory;
  before(async () => {
    keycloak = await new KeycloakDouble({ clients: [{ clientId: 'cp', secret: 's' }, { clientId: 'weak', secret: 'w', roles: ['view-users'] }] }).start();
    directory = new KeycloakAdminDirectory({ url: keycloak.url, realm: keycloak.realm, clientId: 'cp', clientSecret: 's', timeoutMs: 300 });
  });
  after(() => keycloak.close());
  afterEach(() => assert.deepEqual(keycloak.violations, []));

  it('reads every page of a large group and finds one child among many that match the search', async () => {
    const parent = keycloak.consoleCreateGroup('/big');
    for (let i = 0; i < 120; i++) keycloak.consoleCreateGroup(`/big/team-${i}`);
    keycloak.consoleCreateGroup('/big/team');
    assert.equal(await directory.findGroup('team', parent), keycloak.groupId('/big/team'));
    assert.equal(await directory.findGroup('absent', parent), undefined);
    const users = Array.from({ length: 250 }, (_, i) => keycloak.addUser(`member-${i}`));
    for (const user of users) keycloak.consoleJoin(user, '/big');
    assert.deepEqual((await directory.membersOf(parent)).sort(), [...users].sort());
    assert.equal(await directory.findGroup('big'), parent);
    assert.equal(await directory.findGroup('nothing'), undefined);
  });

  it('says exists on 409, undefined for an unknown user, and gone for a deleted group', async () => {
    keycloak.consoleCreateGroup('/taken');
    assert.equal(await directory.createGroup('taken'), 'exists');
    assert.equal(await directory.directGroupsOf('no-such-user'), undefined);
    const user = keycloak.addUser('u');
    const group = keycloak.consoleCreateGroup('/doomed');
    keycloak.consoleDeleteGroup('/doomed');
    await assert.rejects(directory.joinGroup(user, group), KeycloakGroupGoneError);
    await assert.rejects(directory.createGroup('child', group), KeycloakGroupGoneError);
    await assert.rejects(directory.membersOf(group), KeycloakGroupGoneError);
  });

  it('turns 5xx, timeouts and refused roles into retryable errors that say what to fix', async () => {
    keycloak.outage({ kind: 'status', status: 503 });
    await assert.rejects(directory.directGroupsOf('x'), (error: unknown) => error instanceof KeycloakUnavailableError && error.retryable && error.status === 503);
    keycloak.outage({ kind: 'hang' });
    await assert.rejects(directory.directGroupsOf('x'), /did not answer within 300 ms/);
    keycloak.outage(undefined);
    const weak = new KeycloakAdminDirectory({ url: keycloak.url, realm: keycloak.realm, clientId: 'weak', clientSecret: 'w', timeoutMs: 300 });
    await assert.rejects(weak.createGroup('nope'), /manage-users, view-users and query-groups/);
  });
});
