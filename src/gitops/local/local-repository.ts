import fs from 'node:fs/promises';
import path from 'node:path';
import { git, GitCommandError } from './git.ts';
import type { GitopsRepository, RepositoryFile } from '../repository.ts';

export interface LocalRepositoryOptions {
  /** Directory of the bare repository. */
  gitDir: string;
  baseBranch: string;
}

const SERVICE_IDENTITY = {
  GIT_AUTHOR_NAME: 'control-plane',
  GIT_AUTHOR_EMAIL: 'control-plane@gsv.invalid',
  GIT_COMMITTER_NAME: 'control-plane',
  GIT_COMMITTER_EMAIL: 'control-plane@gsv.invalid',
};

/**
 * The embedded backend: a bare repository on disk, written with git plumbing only
 * (no working tree, no clone).
 */
export class LocalRepository implements GitopsRepository {
  readonly driver = 'local' as const;
  readonly gitDir: string;
  readonly baseBranch: string;

  constructor(options: LocalRepositoryOptions) {
    this.gitDir = options.gitDir;
    this.baseBranch = options.baseBranch;
  }

  async ping(): Promise<void> {
    await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${this.baseBranch}^{commit}`]);
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const known = async (rev: string) => /^[0-9a-f]{4,64}$/.test(rev) && (await this.git(['cat-file', '-e', `${rev}^{commit}`]).then(() => true, () => false));
    if (!(await known(ancestor)) || !(await known(descendant))) return false;
    // merge-base --is-ancestor exits 0 (ancestor), 1 (not) or something else (an error).
    return this.git(['merge-base', '--is-ancestor', ancestor, descendant]).then(
      () => true,
      (error: unknown) => {
        if (error instanceof GitCommandError && error.exitCode === 1) return false;
        throw error;
      },
    );
  }

  /**
   * Creates the bare repository with `files` as its first commit on the base branch, unless the
   * branch already exists. Safe to call on every start.
   */
  async ensureInitialized(files: RepositoryFile[]): Promise<void> {
    await fs.mkdir(path.dirname(this.gitDir), { recursive: true });
    await git(['init', '--quiet', '--bare', `--initial-branch=${this.baseBranch}`], { gitDir: this.gitDir });
    const existing = await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${this.baseBranch}`]).catch(() => '');
    if (existing.trim()) return;
    const tree = await this.writeTree(files);
    const commit = (
      await this.git(['commit-tree', tree, '-m', 'Initialize gsv-gitops layout'], { env: SERVICE_IDENTITY })
    ).trim();
    // The all-zero old value makes update-ref fail if another process initialised it meanwhile.
    await this.git(['update-ref', `refs/heads/${this.baseBranch}`, commit, '0'.repeat(40)]).catch(async (error: unknown) => {
      const now = await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${this.baseBranch}`]).catch(() => '');
      if (!now.trim()) throw error;
    });
  }

  /** Writes a tree holding exactly `files` and returns its id (no base tree). */
  private async writeTree(files: RepositoryFile[]): Promise<string> {
    interface Dir { files: Map<string, string>; dirs: Map<string, Dir> }
    const root: Dir = { files: new Map(), dirs: new Map() };
    for (const file of files) {
      const parts = file.path.split('/');
      const name = parts.pop()!;
      let dir = root;
      for (const part of parts) {
        let next = dir.dirs.get(part);
        if (!next) dir.dirs.set(part, (next = { files: new Map(), dirs: new Map() }));
        dir = next;
      }
      dir.files.set(name, (await this.git(['hash-object', '-w', '--stdin'], { input: file.content })).trim());
    }
    const write = async (dir: Dir): Promise<string> => {
      const lines: string[] = [];
      for (const [name, blob] of dir.files) lines.push(`100644 blob ${blob}\t${name}`);
      for (const [name, sub] of dir.dirs) lines.push(`040000 tree ${await write(sub)}\t${name}`);
      return (await this.git(['mktree'], { input: `${lines.join('\n')}\n` })).trim();
    };
    return write(root);
  }

  private git(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
    return git(args, { gitDir: this.gitDir, ...options });
  }
}
