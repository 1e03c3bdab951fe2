import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { renderInstance } from '../../src/gitops/render/change-renderer.ts';
import { addSyntheticTenants, runGit, syntheticOrg, type SyntheticRepositoryShape } from './synthetic-repository.ts';
import type { Benchmark, BenchContext, Measurement } from './measurement.ts';

const TITLE = 'Commit cost vs repository size';
const BRANCH = 'main';

interface Size {
  label: string;
  shape: SyntheticRepositoryShape;
}

const SMALL: Size = { label: 'small repo (10 tenants, 100 files)', shape: { tenants: 10, filesPerTenant: 10, layout: 'flat' } };
const TENANTS: Size = { label: '1,000 tenants (10,000 files)', shape: { tenants: 1_000, filesPerTenant: 10, layout: 'flat' } };
const FILES: Size = { label: '100,000 files (10,000 tenants)', shape: { tenants: 10_000, filesPerTenant: 10, layout: 'flat' } };
/** The bucketed layout (tenant-paths.ts) at 10 and at 100,000 tenants, 3 files each (the fan-out is what a commit pays for). */
const BUCKETED_SMALL: Size = { label: 'bucketed, 10 tenants', shape: { tenants: 10, filesPerTenant: 3, layout: 'bucketed' } };
const BUCKETED_LARGE: Size = { label: 'bucketed, 100,000 tenants (300,000 files)', shape: { tenants: 100_000, filesPerTenant: 3, layout: 'bucketed' } };

/**
 * What the local driver's cost of one instance change depends on: the median time of
 * createCommit (the instance's rendered files into an existing tenant) plus createBranch (its
 * review branch), in repositories of growing size, flat (tenants/<org>/, up to 10,000 tenants)
 * and bucketed (tenants/_<bucket>/<org>/, at 10 and 100,000 tenants); next to a plain
 * `git clone` of the same repository, measured in the same run, which is what a clone-based
 * writer would pay.
 */
export const commitCost: Benchmark = {
  id: 'commit-cost',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const commits = context.quick ? 7 : 21;
    const catalog = await loadTemplateCatalog();
    const rows: Measurement[] = [];
    // Each large repository is measured against its small one in the same loop, commits
    // alternating between the two: on a shared machine, load that comes and goes then weighs on
    // both sides alike instead of on whichever ran second.
    for (const [small, sizes, label] of [
      [SMALL, [TENANTS, FILES], 'small repo'],
      [BUCKETED_SMALL, [BUCKETED_LARGE], 'bucketed, 10 tenants'],
    ] as const) {
      for (const size of sizes) {
        const [base, large] = await Promise.all([prepare(context, small), prepare(context, size)]);
        try {
          const baseTimes: number[] = [];
          const largeTimes: number[] = [];
          for (let i = 0; i < commits + 1; i++) {
            for (const [repo, times] of i % 2 ? ([[base, baseTimes], [large, largeTimes]] as const) : ([[large, largeTimes], [base, baseTimes]] as const)) {
              const elapsed = await commitOnce(catalog, repo, i);
              if (i > 0) times.push(elapsed); // the first one warms the page cache
            }
          }
          const [baseMs, largeMs] = [median(baseTimes), median(largeTimes)];
          if (size === sizes[0]) rows.push({ benchmark: TITLE, case: `one instance change, ${small.label}, median`, value: baseMs, unit: 'ms', note: `${commits} commits, ${base.files} files each` });
          rows.push({
            benchmark: TITLE,
            case: `one instance change, ${size.label}, median`,
            value: largeMs,
            unit: 'ms',
            baseline: { label, value: baseMs },
            target: 'growth ≤ 1.3×',
            met: largeMs / baseMs <= 1.3,
            note: `${commits} commits, alternating with the ${label}`,
          });
          const cloneMs = await cloneOf(large);
          rows.push({
            benchmark: TITLE,
            case: `git clone, ${size.label}`,
            value: cloneMs,
            unit: 'ms',
            baseline: { label: 'one change', value: largeMs },
            target: 'change < clone',
            met: largeMs < cloneMs,
            note: 'file:// clone with checkout',
          });
        } finally {
          await Promise.all([base, large].map((r) => fs.rm(r.dir, { recursive: true, force: true })));
        }
      }
    }
    return rows;
  },
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface Prepared {
  size: Size;
  dir: string;
  gitDir: string;
  repository: LocalRepository;
  base: string;
  files: number;
}

async function prepare(context: BenchContext, size: Size): Promise<Prepared> {
  const dir = path.join(context.workDir, `commit-cost-${size.shape.layout}-${size.shape.tenants}x${size.shape.filesPerTenant}-${randomUUID().slice(0, 8)}`);
  const gitDir = path.join(dir, 'gsv-gitops.git');
  await fs.mkdir(dir, { recursive: true });
  const repository = new LocalRepository({ gitDir, baseBranch: BRANCH });
  await repository.ensureInitialized(await readInitialLayout());
  const t0 = performance.now();
  await addSyntheticTenants(gitDir, BRANCH, size.shape);
  context.log(`generated ${size.label} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { size, dir, gitDir, repository, base: (await repository.getBranch(BRANCH))!, files: 0 };
}

/** One instance's files committed into an existing tenant, and its review branch: the local driver's cost of a change. */
async function commitOnce(catalog: TemplateCatalog, prepared: Prepared, i: number): Promise<number> {
  const org = syntheticOrg((i * 7919) % prepared.size.shape.tenants);
  const changes = renderInstance(
    catalog,
    { org, project: 'default', instanceName: `bench-${i}`, offering: 'studio', role: 'studio', version: '1.0.0', templatePath: 'templates/offerings/studio/1.0.0', parameters: {} },
    randomUUID(),
    prepared.size.shape.layout ?? 'flat',
  );
  prepared.files = changes.length;
  const started = performance.now();
  const commit = await prepared.repository.createCommit({ parent: prepared.base, changes, message: `Add instance bench-${i}\n\nChange-Id: ${randomUUID()}\n` });
  await prepared.repository.createBranch(`cp/bench-${i}`, commit);
  return performance.now() - started;
}

async function cloneOf(prepared: Prepared): Promise<number> {
  const started = performance.now();
  await runGit(['clone', '--quiet', `file://${prepared.gitDir}`, path.join(prepared.dir, 'clone')]);
  return performance.now() - started;
}

