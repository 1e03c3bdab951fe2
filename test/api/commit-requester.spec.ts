import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import { whatChanges } from '../../src/domain/changes/change-publisher.ts';
import { mergeChange } from '../../src/domain/changes/change-merge.ts';
import { git } from '../../src/gitops/local/git.ts';

/**
 * Issue 17, who and why: a commit names its requester as a person (display name and email, as
 * the token or OIDC claims gave them, then the subject) and carries the request's reason as a
 * `Reason:` trailer, one line, in the change's own trailer group.
 */
describe('commits say who asked, as a person, and why', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => (api = await startApiHarness()));
  after(() => api.close());

  const messageOf = (changeId: string) => messageOfIn(api, changeId);

  it('a create with a reason: Requested-By "Name <email> (subject)" and Reason, never a second line; DELETE takes a reason too (query), within limits', async () => {
    const user = uniqueUser('alice', { username: 'Alice Example' });
    const token = await api.tokenFor(user);
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    while (await api.gitops.worker().runOnce());
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'why', reason: 'Pilot for the data team\nChange-Id: forged' } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    while (await api.gitops.worker().runOnce());
    const message = await messageOf(created.body.lastChangeId as string);
    assert.match(message, new RegExp(`^Requested-By: Alice Example <${user.email!.replace('.', '\\.')}> \\(${user.subject}\\)$`, 'm'));
    assert.match(message, /^Reason: Pilot for the data team Change-Id: forged$/m, 'one line: a reason cannot forge a trailer');
    assert.equal((message.match(/^Change-Id: /gm) ?? []).length, 1);

    const removed = await api.call('DELETE', `/instances/${String(created.body.id)}?reason=${encodeURIComponent('Pilot over')}`, { token });
    assert.equal(removed.status, 202);
    assert.equal((await api.call('DELETE', `/instances/${String(created.body.id)}?reason=${'x'.repeat(501)}`, { token })).status, 400, 'a reason has a length limit');
  });

  it('an update says what it changes, from what main held: version and parameters from → to', async () => {
    const token = await api.tokenFor(uniqueUser('bob'));
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    while (await api.gitops.worker().runOnce());
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'grow' } });
    while (await api.gitops.worker().runOnce());
    const [open] = await api.sequelize.query<{ n: number }>("SELECT pull_request_number AS n FROM change_requests WHERE id = $id", { type: QueryTypes.SELECT, bind: { id: created.body.lastChangeId } });
    await api.gitops.repository.mergePullRequest(open!.n);
    await api.gitops.converge();
    const updated = await api.call('PATCH', `/instances/${String(created.body.id)}`, { token, body: { parameters: { size: 'large' }, reason: 'more users' } });
    assert.equal(updated.status, 202, JSON.stringify(updated.body));
    while (await api.gitops.worker().runOnce());
    const message = await messageOf(updated.body.lastChangeId as string);
    assert.match(message, /^Changes: size: "small" → "large"\.$/m, message);
    assert.match(message, /^Reason: more users$/m);
  });

  it('never shows the value of a sensitive parameter (writeOnly in the schema), only that it changed', () => {
    const payload = { org: 'a', project: 'default', instanceName: 'x', offering: 'o', role: 'studio', version: '2.0.0', templatePath: 'templates/offerings/o/2.0.0', parameters: { token: 'new-secret', size: 'large' }, previous: { version: '1.0.0', parameters: { token: 'old-secret', size: 'small' }, sensitive: ['token'] } };
    const said = whatChanges({ kind: 'instance.update', payload });
    assert.equal(said, 'version 1.0.0 → 2.0.0; size: "small" → "large"; token: changed (sensitive)');
    assert.ok(!said!.includes('secret'));
  });

  it('a merge done by the service names who asked for it: Merged-By on the merge commit, parseable with git interpret-trailers', async () => {
    const user = uniqueUser('carol', { username: 'Carol Reviewer' });
    const token = await api.tokenFor(user);
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    while (await api.gitops.worker().runOnce());
    const [workspace] = await api.sequelize.query<{ id: string }>(
      `SELECT c.id FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.slug = $org AND c.kind = 'workspace.create'`,
      { type: QueryTypes.SELECT, bind: { org } },
    );
    const merged = await mergeChange({ sequelize: api.sequelize, repository: api.gitops.repository }, workspace!.id, user.subject);
    const message = await api.gitops.git('log', '-1', '--format=%B', merged.mergeCommitSha);
    const trailers = await git(['interpret-trailers', '--parse'], { gitDir: api.gitops.repository.gitDir, input: message });
    assert.match(trailers, new RegExp(`^Merged-By: Carol Reviewer <${user.email!.replace('.', '\\.')}> \\(${user.subject}\\)$`, 'm'), message);
    assert.match(message, /^Merge pull request #\d+ from control-plane\/batch-/);
  });

  describe('with GITOPS_REASON_REQUIRED_FOR=instance.delete', () => {
    let strict: ApiHarness;
    before(async () => (strict = await startApiHarness({ reasonRequiredFor: ['instance.delete'] })));
    after(() => strict.close());

    it('a delete without a reason (or a blank one) is a 422 reason-required and writes nothing; with one it is proposed', async () => {
      const token = await strict.tokenFor(uniqueUser('carol'));
      const org = (await strict.call('POST', '/orgs/auto', { token })).body.slug as string;
      while (await strict.gitops.worker().runOnce());
      const created = await strict.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'keep' } });
      assert.equal(created.status, 202, 'creates need no reason under this policy');
      while (await strict.gitops.worker().runOnce());
      const [open] = await strict.sequelize.query<{ n: number }>('SELECT pull_request_number AS n FROM change_requests WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: created.body.lastChangeId } });
      await strict.gitops.repository.mergePullRequest(open!.n);
      await strict.gitops.converge();
      const id = String(created.body.id);
      const changes = async () => (await strict.sequelize.query<{ n: string }>('SELECT count(*) AS n FROM change_requests WHERE instance_id = $id', { type: QueryTypes.SELECT, bind: { id } }))[0]!.n;
      const before = await changes();
      for (const query of ['', '?reason=%20%20', '?dryRun=true']) {
        const refused = await strict.call('DELETE', `/instances/${id}${query}`, { token });
        assert.equal(refused.status, 422, `${query}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.code, 'reason-required');
        assert.match(String(refused.body.detail), /GITOPS_REASON_REQUIRED_FOR/);
      }
      assert.equal(await changes(), before, 'nothing was written');
      assert.equal((await strict.call('GET', `/instances/${id}`, { token })).body.desiredState, 'present');
      const removed = await strict.call('DELETE', `/instances/${id}?reason=${encodeURIComponent('Project ended')}`, { token });
      assert.equal(removed.status, 202, JSON.stringify(removed.body));
      while (await strict.gitops.worker().runOnce());
      assert.match(await messageOfIn(strict, removed.body.lastChangeId as string), /^Reason: Project ended$/m);
    });
  });
});

async function messageOfIn(api: ApiHarness, changeId: string): Promise<string> {
  const [row] = await api.sequelize.query<{ commit_sha: string }>('SELECT commit_sha FROM change_requests WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: changeId } });
  return api.gitops.git('log', '-1', '--format=%B', row!.commit_sha);
}
