import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { landChange, publishAll, pullRequestOf, startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import { changeRoutes } from '../../src/api/routes/change-routes.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { instanceDir, tenantDir } from '../../src/gitops/tenant-paths.ts';
import { git } from '../../src/gitops/local/git.ts';

interface LoggedCommit {
  sha: string;
  author: string;
  authoredAt: string;
  message: string;
  parents: number;
}

/**
 * Issue 17, done when: for a tenant with creates, an update, a rejected pull request, an
 * engineer's direct edit and a delete, `git log -- tenants/<org>/` alone answers who, what, when
 * and why for each, and the audit API says the same, external commits included.
 */
describe("a tenant's history in Git answers who, what, when and why", () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(
    async () =>
      (api = await startApiHarness({
        moreRoutes: (sequelize, gitops) => changeRoutes({ sequelize, repository: gitops.repository, mergePolicy: { default: 'pull-request' }, billing: { holdTtlSeconds: 3600 } }),
      })),
  );
  after(() => api.close());

  const log = async (...range: string[]): Promise<LoggedCommit[]> =>
    (await api.gitops.git('log', '--format=%H%x1f%an <%ae>%x1f%aI%x1f%P%x1f%B%x1e', ...range))
      .split('\x1e')
      .map((r) => r.replace(/^\n/, ''))
      .filter(Boolean)
      .map((r) => {
        const [sha, author, authoredAt, parents, message] = r.split('\x1f') as [string, string, string, string, string];
        return { sha, author, authoredAt, message: message.trimEnd(), parents: parents.split(' ').length };
      });

  it('creates, an update, a rejected pull request, a direct edit and a delete, each answered by git log alone', async () => {
    const alice = uniqueUser('alice', { username: 'Alice Auditor' });
    const token = await api.tokenFor(alice);
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    const [workspace] = await api.sequelize.query<{ id: string }>("SELECT c.id FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.slug = $org AND c.kind = 'workspace.create'", { type: QueryTypes.SELECT, bind: { org } });
    await landChange(api, workspace!.id);

    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'pilot', reason: 'Pilot for the data team' } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    await landChange(api, created.body.lastChangeId as string);
    const id = String(created.body.id);
    const updated = await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'large' }, reason: 'Forty more users' } });
    assert.equal(updated.status, 202, JSON.stringify(updated.body));
    await landChange(api, updated.body.lastChangeId as string);

    // A pull request a reviewer closes unmerged: it never reaches main, and stays in the
    // repository as GitHub keeps it, under refs/pull/<n>/head.
    const rejected = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'spare', reason: 'A second studio, just in case' } });
    await publishAll(api);
    const rejectedPull = await pullRequestOf(api, rejected.body.lastChangeId as string);
    await new LocalPullRequests({ sequelize: api.sequelize, repository: api.gitops.repository.gitDir }).setState(rejectedPull, 'closed');

    const values = `${instanceDir(org, 'pilot', 'bucketed')}/values.yaml`;
    const current = (await api.gitops.repository.readDirectories((await api.gitops.repository.getBranch('main'))!, [instanceDir(org, 'pilot', 'bucketed')])).get(instanceDir(org, 'pilot', 'bucketed'))!.get(values)!;
    const edit = await api.gitops.commitAsPerson([{ path: values, content: `${current}# pinned by hand\n` }], 'Pin the pilot studio by hand\n\nIt must not move during the customer demo on Friday.', {
      name: 'Erin Engineer',
      email: 'erin@example.test',
    });
    await api.gitops.converge();

    const removed = await api.call('DELETE', `/instances/${id}?reason=${encodeURIComponent('The pilot is over')}`, { token });
    assert.equal(removed.status, 202, JSON.stringify(removed.body));
    await landChange(api, removed.body.lastChangeId as string);

    // git log -- tenants/<org>/ on main, and nothing else: every commit that is not a merge
    // answers who (a person), what (its title, and for an update what changed), when and why.
    const dir = tenantDir(org, 'bucketed');
    const history = (await log('main', '--', `${dir}/`)).filter((c) => c.parents === 1);
    const who = new RegExp(`^Requested-By: Alice Auditor <${alice.email!.replace('.', '\\.')}> \\(${alice.subject}\\)$`, 'm');
    const expected: [RegExp, RegExp | undefined, RegExp][] = [
      [/^Delete instance pilot in /, undefined, /^Reason: The pilot is over$/m],
      [/^Pin the pilot studio by hand$/m, undefined, /must not move during the customer demo/],
      [/^Update instance pilot in .* to studio /, /^Changes: size: "small" → "large"\.$/m, /^Reason: Forty more users$/m],
      [/^Create studio \S+ instance pilot in /, undefined, /^Reason: Pilot for the data team$/m],
      [/^Add workspace /, undefined, /^Reason: /m],
    ];
    assert.equal(history.length, expected.length, history.map((c) => c.message.split('\n')[0]).join('\n'));
    history.forEach((commit, i) => {
      const [what, changes, why] = expected[i]!;
      assert.match(commit.message, what);
      if (changes) assert.match(commit.message, changes);
      assert.match(commit.message, why, commit.message);
      assert.ok(!Number.isNaN(Date.parse(commit.authoredAt)), 'when');
      if (commit.sha === edit) assert.equal(commit.author, 'Erin Engineer <erin@example.test>', 'an engineer is named by Git itself');
      else assert.match(commit.message, who, 'who asked, as a person');
    });
    // One change, one trailer group, as git interpret-trailers reads it.
    for (const commit of history.filter((c) => c.sha !== edit)) {
      const trailers = await git(['interpret-trailers', '--parse'], { gitDir: api.gitops.repository.gitDir, input: `${commit.message}\n` });
      assert.equal((trailers.match(/^Change-Id: /gm) ?? []).length, 1, trailers);
      assert.match(trailers, /^Org: /m);
    }

    // The rejected pull request: not on main (it never ran), and its commit still says who, what and why.
    const [proposal] = await log('-1', `refs/pull/${rejectedPull}/head`, '--', `${dir}/`);
    assert.match(proposal!.message, /^Create studio \S+ instance spare in /);
    assert.match(proposal!.message, who);
    assert.match(proposal!.message, /^Reason: A second studio, just in case$/m);
    assert.equal(history.some((c) => c.sha === proposal!.sha), false);

    // The audit API tells the same story, page by page, the engineer's commit included.
    const pages: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await api.call('GET', `/orgs/${org}/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token });
      assert.equal(page.status, 200, JSON.stringify(page.body));
      pages.push(...(page.body.items as Record<string, unknown>[]));
      cursor = page.body.nextCursor as string | null;
    } while (cursor);
    assert.deepEqual(
      pages.map((e) => e.commitSha),
      history.map((c) => c.sha),
    );
    const external = pages.find((e) => e.commitSha === edit)!;
    assert.equal(external.source, 'external');
    assert.deepEqual(external.author, { name: 'Erin Engineer', email: 'erin@example.test' });
    assert.ok(pages.filter((e) => e.commitSha !== edit).every((e) => e.source === 'control-plane'));
    assert.deepEqual(pages[0]!.reasons, ['The pilot is over']);

    // A cursor must be a commit of main: an unknown one, or the rejected proposal's, is a 400.
    for (const bad of ['0'.repeat(40), proposal!.sha]) {
      const answer = await api.call('GET', `/orgs/${org}/audit?cursor=${bad}`, { token });
      assert.equal(answer.status, 400, `${bad}: ${JSON.stringify(answer.body)}`);
    }
  });
});
