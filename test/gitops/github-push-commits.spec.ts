import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { commitsFromPushPayload, PUSH_COMMITS_LIMIT } from '../../src/gitops/github/push-commits.ts';

/** Real push deliveries recorded by GitHub (@octokit/webhooks-examples), and variants of them. */
const definitions = createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json') as { name: string; examples: Record<string, unknown>[] }[];
const pushes = definitions.find((d) => d.name === 'push')!.examples;
const branchPush = pushes.find((p) => p.ref === 'refs/heads/master' && (p.commits as unknown[]).length === 1)!;
type Payload = Record<string, unknown> & { commits: Record<string, unknown>[] };
/** The recorded branch push made an update of an existing branch (the recording created the branch). */
const update = (change: (p: Payload) => void = () => {}): Payload => {
  const payload = structuredClone(branchPush) as Payload;
  payload.before = 'a'.repeat(40);
  payload.created = false;
  change(payload);
  return payload;
};

describe('commitsFromPushPayload (push webhook → CommitSummary[])', () => {
  it('turns an update of a branch into the commits it pushed, with author, trailers and paths', () => {
    const [commit, ...rest] = commitsFromPushPayload(update())!;
    assert.equal(rest.length, 0);
    assert.deepEqual(commit, {
      sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      message: 'Initial commit',
      author: { name: 'Codertocat', email: '21031067+Codertocat@users.noreply.github.com' },
      authoredAt: '2019-05-15T15:19:25Z',
      trailers: {},
      paths: ['README.md'],
    });
  });

  it('keeps the order GitHub lists, and every added, removed and modified path once, sorted', () => {
    const second = { ...update().commits[0]!, id: 'b'.repeat(40), message: 'Edit\n\nChange-Id: c1', added: ['z.yaml'], removed: ['README.md'], modified: ['a.yaml', 'z.yaml'] };
    const commits = commitsFromPushPayload(update((p) => ((p.commits = [...p.commits, second]), (p.after = second.id))))!;
    assert.deepEqual(commits.map((c) => c.sha), ['6113728f27ae82c7b1a177c8d03f9e96e0adf246', 'b'.repeat(40)]);
    assert.deepEqual(commits[1]!.paths, ['README.md', 'a.yaml', 'z.yaml']);
    assert.deepEqual(commits[1]!.trailers, { 'Change-Id': ['c1'] });
  });

  it('gives up (undefined) on every recorded payload that is not an update of a branch: tags, created and deleted refs', () => {
    for (const payload of pushes) assert.equal(commitsFromPushPayload(payload), undefined, `${String(payload.ref)} created=${String(payload.created)} deleted=${String(payload.deleted)}`);
  });

  const doubts: [string, (p: Payload) => void][] = [
    ['a forced push', (p) => (p.forced = true)],
    [
      'a payload at the 2048-commit limit (maybe truncated)',
      (p) => {
        p.commits = Array.from({ length: PUSH_COMMITS_LIMIT }, (_, i) => ({ ...p.commits[0], id: (i + 1).toString(16).padStart(40, '0') }));
        p.after = p.commits[PUSH_COMMITS_LIMIT - 1]!.id;
      },
    ],
    ['no commits', (p) => (p.commits = [])],
    ['a list that does not end at `after`', (p) => (p.after = 'c'.repeat(40))],
    ['a commit pushed before to another ref (distinct false: a merge brought it)', (p) => (p.commits[0]!.distinct = false)],
    ['a merge commit by its title', (p) => (p.commits[0]!.message = 'Merge pull request #7 from gsv/control-plane/batch-x')],
    ['a commit with empty file lists (too large for GitHub to compute)', (p) => Object.assign(p.commits[0]!, { added: [], removed: [], modified: [] })],
    ['a commit without file lists', (p) => delete p.commits[0]!.modified],
    ['an author without email', (p) => (p.commits[0]!.author = { name: 'x' })],
    ['a commit id that is not a sha', (p) => (p.commits[0]!.id = 'main')],
    ['the same commit twice', (p) => (p.commits = [p.commits[0]!, p.commits[0]!])],
    ['a missing `forced`', (p) => delete p.forced],
  ];
  for (const [what, change] of doubts) it(`gives up (undefined) on ${what}`, () => assert.equal(commitsFromPushPayload(update(change)), undefined));

  it('gives up on what is not a payload at all', () => {
    for (const value of [undefined, null, 'push', [], { ref: 'refs/heads/main' }]) assert.equal(commitsFromPushPayload(value), undefined);
  });
});
