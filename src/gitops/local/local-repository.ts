import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SERVICE_IDENTITY, signingArgs, type SigningKey } from './commit-signing.ts';
import { git, gitBytes, GitCommandError } from './git.ts';
import { FILE_MODE, parseCatFileBatch, parseTree, treeObject, TREE_MODE, type TreeEntry, type TreeObject } from './tree-objects.ts';
import type { LocalPullRequests } from './local-pull-requests.ts';
import {
  BranchMovedError,
  mergedByTrailer,
  parseTrailers,
  PullRequestNotMergeableError,
  RepositoryRejectedError,
  type CommitSummary,
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
  /** Called after this repository moved a ref (a push to a remote follows; see RemotePusher). */
  onRefMoved?: () => void;
  /** Signs every commit the service writes (GITOPS_LOCAL_SIGNING_KEY, checked by loadSigningKey). */
  signingKey?: SigningKey;
}

const ZERO = '0'.repeat(40);
/** A scratch directory (`cp-blobs-*`, `cp-trees-*` in the OS temp dir) this old belongs to a process killed mid-commit (a commit takes ms). */
const STALE_SCRATCH_MS = 60 * 60 * 1000;
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
  readonly #onRefMoved: () => void;
  readonly signingKey: SigningKey | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: LocalRepositoryOptions) {
    this.gitDir = options.gitDir;
    this.baseBranch = options.baseBranch;
    this.pullRequests = options.pullRequests;
    this.#onRefMoved = options.onRefMoved ?? (() => undefined);
    this.signingKey = options.signingKey;
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

  /**
   * A fixed number of git processes whatever the change's size: one writes the blobs, one reads
   * every directory the change touches (`cat-file --batch`), one writes every new tree
   * (`hash-object -t tree`), one writes the commit. Only trees on changed paths are read or written.
   */
  async createCommit(input: { parent: string; changes: FileChange[]; message: string }): Promise<string> {
    const root: TreeEdit = { files: new Map(), dirs: new Map() };
    const blobs = await this.writeObjects('blob', input.changes.flatMap((c) => ('delete' in c ? [] : [c.content])));
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
        // A later write below this path starts from nothing: delete then write is a replace.
        edit.files.set(name, null);
        edit.dirs.delete(name);
      } else {
        edit.files.set(name, blobs[next++]!);
      }
    }
    const existing = await this.readTrees(input.parent, editedDirectories(root));
    const written: TreeObject[] = [];
    const tree = rewriteTree(root, '', existing, written);
    let treeSha: string;
    if (tree) {
      const shas = await this.writeObjects('tree', written.map((t) => t.body));
      if (shas.length !== written.length || shas.some((sha, i) => sha !== written[i]!.sha)) {
        throw new Error(`git hash-object wrote trees ${shas.join(',')}, expected ${written.map((t) => t.sha).join(',')}`);
      }
      treeSha = tree.sha;
    } else {
      treeSha = (await this.git(['mktree'], { input: '' })).trim(); // the change removed everything
    }
    return this.commitTree([treeSha, '-p', input.parent, '-F', '-'], input.message);
  }

  /** The tree at each of `paths` in `commit` (one `cat-file --batch`); absent paths are left out. */
  private async readTrees(commit: string, paths: string[]): Promise<Map<string, Map<string, TreeEntry>>> {
    const out = await gitBytes(['cat-file', '--batch'], { gitDir: this.gitDir, input: paths.map((p) => `${commit}:${p}\n`).join('') });
    const trees = new Map<string, Map<string, TreeEntry>>();
    parseCatFileBatch(out, paths.length, 'tree').forEach((body, i) => {
      if (body) trees.set(paths[i]!, parseTree(body));
    });
    return trees;
  }

  /** Writes objects of one type with one git process (`hash-object --stdin-paths` over temporary files). */
  private async writeObjects(type: 'blob' | 'tree', contents: (string | Buffer)[]): Promise<string[]> {
    if (contents.length === 0) return [];
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `cp-${type}s-`));
    try {
      const files = await Promise.all(
        contents.map(async (content, index) => {
          const file = path.join(dir, String(index));
          await fs.writeFile(file, content);
          return file;
        }),
      );
      const out = await this.git(['hash-object', '-w', '-t', type, '--no-filters', '--stdin-paths'], { input: `${files.join('\n')}\n` });
      return out.trim().split('\n');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async createBranch(branch: string, sha: string): Promise<string> {
    return this.serialized(async () => {
      try {
        await this.git(['update-ref', `refs/heads/${branch}`, sha, ZERO]);
        this.#onRefMoved();
        return sha;
      } catch (error) {
        const existing = await this.getBranch(branch);
        if (existing) return existing;
        throw error;
      }
    });
  }

  async deleteBranch(branch: string): Promise<void> {
    await this.serialized(async () => {
      if ((await this.getBranch(branch)) === undefined) return;
      await this.git(['update-ref', '-d', `refs/heads/${branch}`]);
      this.#onRefMoved();
    });
  }

  async updateBranch(branch: string, sha: string, options: { expected: string; force?: boolean }): Promise<void> {
    await this.serialized(async () => {
      if (!options.force && !(await this.isAncestor(options.expected, sha))) {
        throw new RepositoryRejectedError(`${sha} is not a fast-forward of ${branch} at ${options.expected}`);
      }
      try {
        await this.git(['update-ref', `refs/heads/${branch}`, sha, options.expected]);
        this.#onRefMoved();
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
    await this.keepPullHead(row.number, head);
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
  async mergePullRequest(number: number, options: { mergedBy?: string } = {}): Promise<PullRequest> {
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
            throw new PullRequestNotMergeableError(number, 'conflict', `${row.branch} conflicts with ${this.baseBranch}${error.stderr.trim() ? `: ${error.stderr.trim()}` : ''}`);
          }
          throw error;
        });
        const message = `Merge pull request #${number} from ${row.branch}\n${options.mergedBy ? `\n${mergedByTrailer(options.mergedBy)}\n` : ''}`;
        const commit = await this.commitTree([tree.split('\n')[0]!.trim(), '-p', base, '-p', head, '-F', '-'], message);
        try {
          await this.git(['update-ref', `refs/heads/${this.baseBranch}`, commit, base]);
          this.#onRefMoved();
          return commit;
        } catch {
          // Another writer moved the base branch between our read and our update: merge again.
        }
      }
      throw new BranchMovedError(this.baseBranch, 'it kept moving while merging');
    });
    await store.markMerged(number, head, mergeSha);
    await this.keepPullHead(number, head);
    return this.toPullRequest(number, row.branch, 'merged', head, mergeSha);
  }

  /**
   * Closes it in one statement (state, head and comment together), so a retry finds it closed
   * and posts nothing twice. A merged or closed one is returned as it is. A merge that was
   * already under way when this ran still lands: the merge records itself after the close,
   * and getPullRequest then reports it merged, as Git says.
   */
  async closePullRequest(number: number, comment: string): Promise<PullRequest> {
    const store = this.requireStore();
    const row = await store.get(number);
    if (!row) throw new RepositoryRejectedError(`pull request #${number} does not exist`);
    if (row.state === 'open') {
      const head = (await this.getBranch(row.branch)) ?? row.head_sha ?? '';
      const closed = await store.close(number, { headSha: head, comment });
      if (head) await this.keepPullHead(number, head);
      if (closed) return this.toPullRequest(number, closed.branch, closed.state, head, undefined);
    }
    return (await this.getPullRequest(number))!;
  }

  /**
   * `refs/pull/<n>/head`, as GitHub keeps one for every pull request, merged, closed or open,
   * after its branch is deleted: a change that was proposed and never merged stays in the
   * repository's history (`git log refs/pull/<n>/head`) with its trailers.
   */
  private async keepPullHead(number: number, head: string): Promise<void> {
    await this.git(['update-ref', `refs/pull/${number}/head`, head]);
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
    const out = await this.git(['log', '--no-merges', '--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e', '-n', String(input.limit + 1), start, '--', input.pathPrefix]);
    const commits: HistoryCommit[] = out
      .split('\x1e')
      .map((record) => record.replace(/^\n/, ''))
      .filter(Boolean)
      .map((record) => {
        const [sha, name, email, authoredAt, message] = record.split('\x1f') as [string, string, string, string, string];
        return { sha, author: { name, email }, authoredAt, message: message.trimEnd(), trailers: parseTrailers(message) };
      });
    const page = commits.slice(0, input.limit);
    return { commits: page, nextCursor: commits.length > input.limit ? commits[input.limit]!.sha : undefined };
  }

  /** Two git processes whatever the range: `log --name-only` for the commits, and nothing else. */
  async compareCommits(base: string | undefined, head: string): Promise<CommitSummary[]> {
    for (const sha of [base, head]) if (sha !== undefined && !SHA.test(sha)) throw new RepositoryRejectedError(`${sha} is not a commit id`);
    // --first-parent -m: a merge commit lists the paths it changed against the base branch.
    const range = base === undefined ? ['-n', '1', head] : [`${base}..${head}`];
    const out = await this.git(['log', '--reverse', '--first-parent', '-m', '--name-only', '--format=%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%B%x1f', ...range]);
    return out
      .split('\x1e')
      .filter((record) => record.trim() !== '')
      .map((record) => {
        const [sha, name, email, authoredAt, message, files] = record.split('\x1f') as [string, string, string, string, string, string];
        return {
          sha,
          message: message.trimEnd(),
          author: { name, email },
          authoredAt,
          trailers: parseTrailers(message),
          paths: files.split('\n').filter(Boolean),
        };
      });
  }

  /** Two git processes: `ls-tree -r` of every directory, then one `cat-file --batch` of every blob. */
  async readDirectories(commit: string, dirs: string[]): Promise<Map<string, Map<string, string>>> {
    if (!SHA.test(commit)) throw new RepositoryRejectedError(`${commit} is not a commit id`);
    const result = new Map(dirs.map((dir) => [dir, new Map<string, string>()]));
    if (dirs.length === 0) return result;
    const listing = await this.git(['ls-tree', '-r', '-z', '--full-tree', commit, '--', ...dirs.map((dir) => `${dir}/`)]);
    const blobs = listing
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const [meta, filePath] = line.split('\t') as [string, string];
        return { sha: meta.split(' ')[2]!, type: meta.split(' ')[1], path: filePath };
      })
      .filter((entry) => entry.type === 'blob');
    if (blobs.length === 0) return result;
    const out = await gitBytes(['cat-file', '--batch'], { gitDir: this.gitDir, input: blobs.map((b) => `${b.sha}\n`).join('') });
    parseCatFileBatch(out, blobs.length, 'blob').forEach((body, i) => {
      const { path: filePath } = blobs[i]!;
      const dir = dirs.find((d) => filePath.startsWith(`${d}/`));
      if (body && dir !== undefined) result.get(dir)!.set(filePath, body.toString('utf8'));
    });
    return result;
  }

  /**
   * Creates the bare repository with `files` as its first commit on the base branch, unless the
   * branch already exists. Safe to call on every start.
   */
  async ensureInitialized(files: RepositoryFile[]): Promise<void> {
    await removeStaleScratch();
    await fs.mkdir(path.dirname(this.gitDir), { recursive: true });
    await this.initBare();
    if (await this.getBranch(this.baseBranch)) return;
    const empty = (await this.git(['mktree'], { input: '' })).trim();
    const root = await this.commitTree([empty, '-m', 'empty']);
    // Build the layout as a change on an empty tree, then make it a root commit.
    const seeded = await this.createCommit({ parent: root, changes: files, message: 'seed' });
    const tree = (await this.git(['rev-parse', `${seeded}^{tree}`])).trim();
    const commit = await this.commitTree([tree, '-m', 'Initialize gsv-gitops layout']);
    // The all-zero old value makes update-ref fail if another process initialised it meanwhile.
    await this.git(['update-ref', `refs/heads/${this.baseBranch}`, commit, ZERO]).catch(async (error: unknown) => {
      if (!(await this.getBranch(this.baseBranch))) throw error;
    });
  }

  /**
   * `git init --bare`, tolerating another replica (or call) initialising the same directory at
   * the same moment: git then fails copying its templates, and the repository is there anyway.
   */
  private async initBare(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await git(['init', '--quiet', '--bare', `--initial-branch=${this.baseBranch}`], { gitDir: this.gitDir });
        return;
      } catch (error) {
        const ready = await this.git(['rev-parse', '--is-bare-repository']).then((out) => out.trim() === 'true', () => false);
        if (ready) return;
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
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

  /** Every commit the service writes, as the service, signed when a signing key is configured. */
  private async commitTree(args: string[], message?: string): Promise<string> {
    const sign = this.signingKey ? ['-S'] : [];
    return (await this.git([...signingArgs(this.signingKey), 'commit-tree', ...sign, ...args], { env: SERVICE_IDENTITY, ...(message === undefined ? {} : { input: message }) })).trim();
  }

  private git(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
    return git(args, { gitDir: this.gitDir, ...options });
  }
}

/**
 * Directories whose current tree the edit needs: every directory it touches, except those it
 * deletes and rewrites (they start empty) and anything below them.
 */
function editedDirectories(edit: TreeEdit, prefix = '', out: string[] = ['']): string[] {
  for (const [name, sub] of edit.dirs) {
    if (edit.files.get(name) === null) continue;
    const dir = `${prefix}${name}`;
    out.push(dir);
    editedDirectories(sub, `${dir}/`, out);
  }
  return out;
}

/**
 * The new tree for `dir` (undefined when it ends up empty): its current entries with the edit
 * applied, subtrees first. Every new tree is appended to `written` in an order mktree can take.
 * Untouched entries keep their ids, so unchanged subtrees are never read.
 */
function rewriteTree(edit: TreeEdit, dir: string, existing: Map<string, Map<string, TreeEntry>>, written: TreeObject[]): TreeObject | undefined {
  const entries = new Map(existing.get(dir));
  for (const [name, blob] of edit.files) {
    if (blob === null) entries.delete(name);
    else entries.set(name, { mode: FILE_MODE, sha: blob });
  }
  for (const [name, sub] of edit.dirs) {
    const tree = rewriteTree(sub, dir ? `${dir}/${name}` : name, existing, written);
    if (tree) entries.set(name, { mode: TREE_MODE, sha: tree.sha });
    else entries.delete(name);
  }
  if (entries.size === 0) return undefined;
  const tree = treeObject(entries);
  written.push(tree);
  return tree;
}

/**
 * Removes the scratch directories of commits cut short by a kill (SIGKILL skips the cleanup),
 * leaving any another process on this host could still be using. Best effort.
 */
export async function removeStaleScratch(now = Date.now()): Promise<number> {
  const names = await fs.readdir(os.tmpdir()).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    if (!/^cp-(blob|tree)s-/.test(name)) continue;
    const dir = path.join(os.tmpdir(), name);
    const stat = await fs.stat(dir).catch(() => undefined);
    if (!stat?.isDirectory() || now - stat.mtimeMs < STALE_SCRATCH_MS) continue;
    await fs.rm(dir, { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}
