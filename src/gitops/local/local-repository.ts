import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { git, GitCommandError } from './git.ts';
import type { LocalPullRequests } from './local-pull-requests.ts';
import {
  BranchMovedError,
  parseTrailers,
  RepositoryRejectedError,
  type FileChange,
  type GitopsRepository,
  type HistoryCommit,
  type HistoryPage,
  type PullRequest,
  type RepositoryFile,
} from '../repository.ts';

export interface LocalRepositoryOptions {
  /** Directory of the bare repository. */
  gitDir: string;
  baseBranch: string;
  /** Where pull requests are recorded; required for openPullRequest/mergePullRequest. */
  pullRequests?: LocalPullRequests;
}

const SERVICE_IDENTITY = {
  GIT_AUTHOR_NAME: 'control-plane',
  GIT_AUTHOR_EMAIL: 'control-plane@gsv.invalid',
  GIT_COMMITTER_NAME: 'control-plane',
  GIT_COMMITTER_EMAIL: 'control-plane@gsv.invalid',
};
const ZERO = '0'.repeat(40);
const SHA = /^[0-9a-f]{40}$/;

/** One level of a tree being rebuilt: what the change sets below this directory. */
interface TreeEdit {
  files: Map<string, string | null>;
  dirs: Map<string, TreeEdit>;
}

/**
 * The embedded backend: a bare repository on disk, written with git plumbing only (no working
 * tree, no clone). A commit reads and rewrites only the trees on the paths it changes. Ref
 * updates are compare-and-swap (`update-ref <new> <old>`), which git makes atomic across
 * processes; within a process writes are also queued, so they do not spin on each other.
 */
export class LocalRepository implements GitopsRepository {
  readonly driver = 'local' as const;
  readonly gitDir: string;
  readonly baseBranch: string;
  readonly pullRequests: LocalPullRequests | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: LocalRepositoryOptions) {
    this.gitDir = options.gitDir;
    this.baseBranch = options.baseBranch;
    this.pullRequests = options.pullRequests;
  }

  async ping(): Promise<void> {
    await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${this.baseBranch}^{commit}`]);
  }

  async getBranch(branch: string): Promise<string | undefined> {
    const out = await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]).catch((error: unknown) => {
      if (error instanceof GitCommandError && error.exitCode === 1) return '';
      throw error;
    });
    return out.trim() || undefined;
  }

  async createCommit(input: { parent: string; changes: FileChange[]; message: string }): Promise<string> {
    const root: TreeEdit = { files: new Map(), dirs: new Map() };
    const blobs = await this.writeBlobs(input.changes.flatMap((c) => ('delete' in c ? [] : [c.content])));
    let next = 0;
    for (const change of input.changes) {
      const parts = change.path.split('/');
      const name = parts.pop()!;
      let edit = root;
      for (const part of parts) {
        let next = edit.dirs.get(part);
        if (!next) edit.dirs.set(part, (next = { files: new Map(), dirs: new Map() }));
        edit = next;
      }
      if ('delete' in change) {
        edit.files.set(name, null);
        edit.dirs.delete(name);
      } else {
        edit.files.set(name, blobs[next++]!);
      }
    }
    const baseTree = (await this.git(['rev-parse', `${input.parent}^{tree}`])).trim();
    const tree = (await this.applyEdit(baseTree, root)) ?? (await this.git(['mktree'], { input: '' })).trim();
    return (await this.git(['commit-tree', tree, '-p', input.parent, '-F', '-'], { input: input.message, env: SERVICE_IDENTITY })).trim();
  }

  /** Writes every blob with one git process (`hash-object --stdin-paths` over temporary files). */
  private async writeBlobs(contents: string[]): Promise<string[]> {
    if (contents.length === 0) return [];
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-blobs-'));
    try {
      const files = await Promise.all(
        contents.map(async (content, index) => {
          const file = path.join(dir, String(index));
          await fs.writeFile(file, content);
          return file;
        }),
      );
      const out = await this.git(['hash-object', '-w', '--no-filters', '--stdin-paths'], { input: `${files.join('\n')}\n` });
      return out.trim().split('\n');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Rewrites one tree level; untouched entries keep their ids, so unchanged subtrees are never read. */
  private async applyEdit(tree: string | undefined, edit: TreeEdit): Promise<string | undefined> {
    const entries = new Map<string, string>();
    if (tree) {
      for (const line of (await this.git(['ls-tree', '-z', tree])).split('\0')) {
        if (!line) continue;
        const tab = line.indexOf('\t');
        entries.set(line.slice(tab + 1), line.slice(0, tab));
      }
    }
    for (const [name, blob] of edit.files) {
      if (blob === null) entries.delete(name);
      else entries.set(name, `100644 blob ${blob}`);
    }
    // Sibling directories are independent: rewrite them concurrently.
    const rewritten = await Promise.all(
      [...edit.dirs].map(async ([name, sub]) => {
        const existing = entries.get(name);
        const subtree = existing?.includes(' tree ') ? existing.split(' ')[2] : undefined;
        return [name, await this.applyEdit(subtree, sub)] as const;
      }),
    );
    for (const [name, tree] of rewritten) {
      if (tree) entries.set(name, `040000 tree ${tree}`);
      else entries.delete(name);
    }
    if (entries.size === 0) return undefined;
    const input = [...entries].map(([name, head]) => `${head}\t${name}\0`).join('');
    return (await this.git(['mktree', '-z'], { input })).trim();
  }

  async createBranch(branch: string, sha: string): Promise<string> {
    return this.serialized(async () => {
      try {
        await this.git(['update-ref', `refs/heads/${branch}`, sha, ZERO]);
        return sha;
      } catch (error) {
        const existing = await this.getBranch(branch);
        if (existing) return existing;
        throw error;
      }
    });
  }

  async updateBranch(branch: string, sha: string, options: { expected: string; force?: boolean }): Promise<void> {
    await this.serialized(async () => {
      if (!options.force && !(await this.isAncestor(options.expected, sha))) {
        throw new RepositoryRejectedError(`${sha} is not a fast-forward of ${branch} at ${options.expected}`);
      }
      try {
        await this.git(['update-ref', `refs/heads/${branch}`, sha, options.expected]);
      } catch {
        const now = await this.getBranch(branch);
        if (now === sha) return;
        throw new BranchMovedError(branch, `expected ${options.expected}, found ${now ?? 'no branch'}`);
      }
    });
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    if (!/^[0-9a-f]{4,64}$/.test(ancestor) || !/^[0-9a-f]{4,64}$/.test(descendant)) return false;
    // One process checks that both are commits here ("<rev> missing" otherwise).
    const known = await this.git(['cat-file', '--batch-check=%(objecttype)'], { input: `${ancestor}^{commit}\n${descendant}^{commit}\n` });
    if (known.split('\n').filter(Boolean).some((line) => line !== 'commit')) return false;
    // merge-base --is-ancestor exits 0 (ancestor), 1 (not) or something else (an error).
    return this.git(['merge-base', '--is-ancestor', ancestor, descendant]).then(
      () => true,
      (error: unknown) => {
        if (error instanceof GitCommandError && error.exitCode === 1) return false;
        throw error;
      },
    );
  }

  async openPullRequest(input: { branch: string; title: string; body: string }): Promise<PullRequest> {
    const store = this.requireStore();
    const head = await this.getBranch(input.branch);
    if (!head) throw new RepositoryRejectedError(`branch ${input.branch} does not exist`);
    const row = await store.open({ ...input, baseBranch: this.baseBranch, headSha: head });
    return this.toPullRequest(row.number, row.branch, row.state, head, row.merge_commit_sha ?? undefined);
  }

  async getPullRequest(number: number): Promise<PullRequest | undefined> {
    const row = await this.requireStore().get(number);
    if (!row) return undefined;
    const head = row.state === 'open' ? ((await this.getBranch(row.branch)) ?? row.head_sha ?? '') : (row.head_sha ?? '');
    return this.toPullRequest(row.number, row.branch, row.state, head, row.merge_commit_sha ?? undefined);
  }

  /**
   * Merges as GitHub's merge button does: a merge commit on the base branch whose parents are
   * the base and the branch, its tree from a three-way merge (`git merge-tree`, no worktree).
   */
  async mergePullRequest(number: number): Promise<PullRequest> {
    const store = this.requireStore();
    const row = await store.get(number);
    if (!row) throw new RepositoryRejectedError(`pull request #${number} does not exist`);
    if (row.state === 'merged') return this.toPullRequest(number, row.branch, 'merged', row.head_sha ?? '', row.merge_commit_sha ?? undefined);
    if (row.state === 'closed') throw new RepositoryRejectedError(`pull request #${number} is closed`);
    const head = await this.getBranch(row.branch);
    if (!head) throw new RepositoryRejectedError(`branch ${row.branch} of pull request #${number} no longer exists`);

    const mergeSha = await this.serialized(async () => {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const base = (await this.getBranch(this.baseBranch))!;
        // A merge that reached the branch before a crash kept us from recording it.
        const earlier = await this.findMergeOf(head, base);
        if (earlier) return earlier;
        const tree = await this.git(['merge-tree', '--write-tree', base, head]).catch((error: unknown) => {
          if (error instanceof GitCommandError && error.exitCode === 1) {
            throw new RepositoryRejectedError(`pull request #${number} conflicts with ${this.baseBranch}: ${error.stderr || 'conflicting paths'}`);
          }
          throw error;
        });
        const message = `Merge pull request #${number} from ${row.branch}\n`;
        const commit = (
          await this.git(['commit-tree', tree.split('\n')[0]!.trim(), '-p', base, '-p', head, '-F', '-'], { input: message, env: SERVICE_IDENTITY })
        ).trim();
        try {
          await this.git(['update-ref', `refs/heads/${this.baseBranch}`, commit, base]);
          return commit;
        } catch {
          // Another writer moved the base branch between our read and our update: merge again.
        }
      }
      throw new BranchMovedError(this.baseBranch, 'it kept moving while merging');
    });
    await store.markMerged(number, head, mergeSha);
    return this.toPullRequest(number, row.branch, 'merged', head, mergeSha);
  }

  /** The merge commit on the base branch's first-parent line whose second parent is `head`. */
  private async findMergeOf(head: string, base: string): Promise<string | undefined> {
    if (!(await this.isAncestor(head, base))) return undefined;
    const out = await this.git(['log', '--first-parent', '--merges', '--format=%H %P', '-n', '500', base]);
    for (const line of out.split('\n')) {
      const [sha, , second] = line.split(' ');
      if (second === head) return sha;
    }
    return base;
  }

  async history(input: { pathPrefix: string; limit: number; cursor?: string }): Promise<HistoryPage> {
    if (input.cursor !== undefined && !SHA.test(input.cursor)) throw new RepositoryRejectedError('cursor is not a commit id');
    const start = input.cursor ?? `refs/heads/${this.baseBranch}`;
    const out = await this.git(['log', '--no-merges', '--format=%H%x1f%aI%x1f%B%x1e', '-n', String(input.limit + 1), start, '--', input.pathPrefix]);
    const commits: HistoryCommit[] = out
      .split('\x1e')
      .map((record) => record.replace(/^\n/, ''))
      .filter(Boolean)
      .map((record) => {
        const [sha, authoredAt, message] = record.split('\x1f') as [string, string, string];
        return { sha, authoredAt, message: message.trimEnd(), trailers: parseTrailers(message) };
      });
    const page = commits.slice(0, input.limit);
    return { commits: page, nextCursor: commits.length > input.limit ? commits[input.limit]!.sha : undefined };
  }

  /**
   * Creates the bare repository with `files` as its first commit on the base branch, unless the
   * branch already exists. Safe to call on every start.
   */
  async ensureInitialized(files: RepositoryFile[]): Promise<void> {
    await fs.mkdir(path.dirname(this.gitDir), { recursive: true });
    await git(['init', '--quiet', '--bare', `--initial-branch=${this.baseBranch}`], { gitDir: this.gitDir });
    if (await this.getBranch(this.baseBranch)) return;
    const empty = (await this.git(['mktree'], { input: '' })).trim();
    const root = (await this.git(['commit-tree', empty, '-m', 'empty'], { env: SERVICE_IDENTITY })).trim();
    // Build the layout as a change on an empty tree, then make it a root commit.
    const seeded = await this.createCommit({ parent: root, changes: files, message: 'seed' });
    const tree = (await this.git(['rev-parse', `${seeded}^{tree}`])).trim();
    const commit = (await this.git(['commit-tree', tree, '-m', 'Initialize gsv-gitops layout'], { env: SERVICE_IDENTITY })).trim();
    // The all-zero old value makes update-ref fail if another process initialised it meanwhile.
    await this.git(['update-ref', `refs/heads/${this.baseBranch}`, commit, ZERO]).catch(async (error: unknown) => {
      if (!(await this.getBranch(this.baseBranch))) throw error;
    });
  }

  private toPullRequest(number: number, branch: string, state: PullRequest['state'], headSha: string, mergeCommitSha: string | undefined): PullRequest {
    return { number, url: `local:${this.gitDir}#pull/${number}`, branch, state, headSha, mergeCommitSha };
  }

  private requireStore(): LocalPullRequests {
    if (!this.pullRequests) throw new Error('this LocalRepository was built without a pull request store');
    return this.pullRequests;
  }

  /** Runs ref updates of this process one at a time (other processes are held off by update-ref's CAS). */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  private git(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
    return git(args, { gitDir: this.gitDir, ...options });
  }
}
