import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tenantBucket, type TenantLayout } from '../../src/gitops/tenant-paths.ts';

export interface SyntheticRepositoryShape {
  tenants: number;
  filesPerTenant: number;
  /** Where the orgs' directories go (src/gitops/tenant-paths.ts); flat by default. */
  layout?: TenantLayout;
}

const KINDS = ['namespace', 'resource-quota', 'limit-range', 'network-policy', 'role-binding', 'app-project', 'application', 'kustomization'];

function tenantFile(org: string, index: number): { name: string; content: string } {
  const kind = KINDS[index % KINDS.length]!;
  const name = `${kind}-${Math.floor(index / KINDS.length)}.yaml`;
  return {
    name,
    content: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${org}-${name.replace('.yaml', '')}\n  labels:\n    app.kubernetes.io/managed-by: control-plane\n    gsv.io/org: ${org}\ndata:\n  index: "${index}"\n`,
  };
}

export function syntheticOrg(index: number): string {
  return `org-${index.toString(36).padStart(4, '0')}`;
}

/**
 * Adds `tenants` tenants of `filesPerTenant` distinct files each under `tenants/` of the base
 * branch of an initialised bare repository, as one commit. Built bottom-up: every blob through
 * one `git fast-import` (blobs only: its tree handling is quadratic in directory size), every
 * tenant tree through one `git mktree --batch`, so 100,000 files take seconds.
 */
export async function addSyntheticTenants(gitDir: string, branch: string, shape: SyntheticRepositoryShape): Promise<number> {
  const marksFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'cp-marks-')), 'marks');
  const stream: string[] = [];
  const names: string[][] = [];
  let mark = 0;
  for (let t = 0; t < shape.tenants; t++) {
    const org = syntheticOrg(t);
    const tenant: string[] = [];
    for (let f = 0; f < shape.filesPerTenant; f++) {
      const file = tenantFile(org, f);
      mark += 1;
      tenant.push(file.name);
      stream.push(`blob\nmark :${mark}\ndata ${Buffer.byteLength(file.content)}\n${file.content}\n`);
    }
    names.push(tenant);
  }
  stream.push('done\n');
  await git(['--git-dir', gitDir, 'fast-import', '--quiet', '--done', `--export-marks=${marksFile}`], stream.join(''));
  const shaOfMark = new Map<number, string>();
  for (const line of (await fs.readFile(marksFile, 'utf8')).split('\n')) {
    const [m, sha] = line.split(' ');
    if (m && sha) shaOfMark.set(Number(m.slice(1)), sha);
  }
  await fs.rm(path.dirname(marksFile), { recursive: true, force: true });

  let next = 0;
  const batch = names.map((tenant) => tenant.map((name) => `100644 blob ${shaOfMark.get(++next)}\t${name}`).join('\n')).join('\n\n');
  const tenantTrees = (await git(['--git-dir', gitDir, 'mktree', '--batch'], `${batch}\n`)).trim().split('\n');

  const base = (await git(['--git-dir', gitDir, 'rev-parse', `refs/heads/${branch}`])).trim();
  const existingTenants = await git(['--git-dir', gitDir, 'ls-tree', `${base}:tenants`]).catch(() => '');
  let entries = tenantTrees.map((tree, t) => `040000 tree ${tree}\t${syntheticOrg(t)}\n`);
  if (shape.layout === 'bucketed') {
    // tenants/_<bucket>/<org>: one tree per bucket, again through one mktree --batch.
    const buckets = new Map<string, string[]>();
    tenantTrees.forEach((tree, t) => {
      const bucket = tenantBucket(syntheticOrg(t));
      buckets.set(bucket, [...(buckets.get(bucket) ?? []), `040000 tree ${tree}\t${syntheticOrg(t)}`]);
    });
    const names = [...buckets.keys()];
    const trees = (await git(['--git-dir', gitDir, 'mktree', '--batch'], `${names.map((b) => buckets.get(b)!.join('\n')).join('\n\n')}\n`)).trim().split('\n');
    entries = names.map((bucket, i) => `040000 tree ${trees[i]}\t${bucket}\n`);
  }
  const tenantsTree = (await git(['--git-dir', gitDir, 'mktree'], existingTenants + entries.join(''))).trim();
  const rootEntries = (await git(['--git-dir', gitDir, 'ls-tree', base]))
    .split('\n')
    .filter((line) => line && !line.endsWith('\ttenants'))
    .concat(`040000 tree ${tenantsTree}\ttenants`);
  const root = (await git(['--git-dir', gitDir, 'mktree'], `${rootEntries.join('\n')}\n`)).trim();
  const commit = (
    await git(['--git-dir', gitDir, 'commit-tree', root, '-p', base, '-m', `Synthetic tenants: ${shape.tenants} × ${shape.filesPerTenant} files`], '', {
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@example.invalid',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@example.invalid',
    })
  ).trim();
  await git(['--git-dir', gitDir, 'update-ref', `refs/heads/${branch}`, commit, base]);
  // One pack, as a long-lived repository would have after gc: clones then read it as is.
  await git(['--git-dir', gitDir, 'repack', '-a', '-d', '-q']);
  return shape.tenants * shape.filesPerTenant;
}

// glibc returns freed memory to the kernel eagerly; on some VMs every brk() costs ~0.2 ms and
// fast-import spends minutes in them. Generation is set-up, not the measured work, so pad it.
const GENERATION_ENV = { MALLOC_TOP_PAD_: String(256 * 2 ** 20), MALLOC_TRIM_THRESHOLD_: String(256 * 2 ** 20) };

function git(args: string[], input = '', env: Record<string, string> = {}): Promise<string> {
  return runGit(args, { input, env: { ...GENERATION_ENV, ...env } });
}

/** Runs git with the environment the service's own git commands get (no allocator tuning). */
export function runGit(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
  const { input = '', env = {}, cwd } = options;
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C', ...env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`git ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`)),
    );
    // A git that exits early closes its stdin; its exit code and stderr tell why, not EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}
