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

const SMALL: Size = { label: 'small repo (10 tenants, 100 files)', shape: { tenants: 10, filesPerTenant: 10 } };
const TENANTS: Size = { label: '1,000 tenants (10,000 files)', shape: { tenants: 1_000, filesPerTenant: 10 } };
const FILES: Size = { label: '100,000 files (10,000 tenants)', shape: { tenants: 10_000, filesPerTenant: 10 } };

/**
 * What the local driver's cost of one instance change depends on: the median time of
 * createCommit (the instance's rendered files into an existing tenant) plus createBranch (its
 * review branch), in repositories of growing size; next to a plain `git clone` of the same
 * repository, measured in the same run, which is what a clone-based writer would pay.
 */
export const commitCost: Benchmark = {
  id: 'commit-cost',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const commits = context.quick ? 7 : 21;
    const catalog = await loadTemplateCatalog();
    const rows: Measurement[] = [];
    const small = await measure(context, catalog, SMALL, commits, false);
    rows.push({ benchmark: TITLE, case: `one instance change, ${SMALL.label}, median`, value: small.medianMs, unit: 'ms', note: `${commits} commits, ${small.files} files each` });
    for (const size of [TENANTS, FILES]) {
      const result = await measure(context, catalog, size, commits, true);
      const growth = result.medianMs / small.medianMs;
      rows.push({
        benchmark: TITLE,
        case: `one instance change, ${size.label}, median`,
        value: result.medianMs,
        unit: 'ms',
        baseline: { label: 'small repo', value: small.medianMs },
        target: 'growth ≤ 1.3×',
        met: growth <= 1.3,
        note: `${commits} commits`,
      });
      rows.push({
        benchmark: TITLE,
        case: `git clone, ${size.label}`,
        value: result.cloneMs!,
        unit: 'ms',
        baseline: { label: 'one change', value: result.medianMs },
        target: 'change < clone',
        met: result.medianMs < result.cloneMs!,
        note: 'file:// clone with checkout',
      });
    }
    return rows;
  },
};

async function measure(context: BenchContext, catalog: TemplateCatalog, size: Size, commits: number, clone: boolean): Promise<{ medianMs: number; cloneMs?: number; files: number }> {
  const dir = path.join(context.workDir, `commit-cost-${size.shape.tenants}x${size.shape.filesPerTenant}`);
  const gitDir = path.join(dir, 'gsv-gitops.git');
  await fs.mkdir(dir, { recursive: true });
  const repository = new LocalRepository({ gitDir, baseBranch: BRANCH });
  await repository.ensureInitialized(await readInitialLayout());
  const t0 = performance.now();
  await addSyntheticTenants(gitDir, BRANCH, size.shape);
  context.log(`generated ${size.label} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const base = (await repository.getBranch(BRANCH))!;
  const times: number[] = [];
  let files = 0;
  for (let i = 0; i < commits + 1; i++) {
    const org = syntheticOrg((i * 7919) % size.shape.tenants);
    const changes = renderInstance(
      catalog,
      { org, project: 'default', instanceName: `bench-${i}`, offering: 'studio', role: 'studio', version: '1.0.0', templatePath: 'templates/offerings/studio/1.0.0', parameters: {} },
      randomUUID(),
      'bucketed',
    );
    files = changes.length;
    const started = performance.now();
    const commit = await repository.createCommit({ parent: base, changes, message: `Add instance bench-${i}\n\nChange-Id: ${randomUUID()}\n` });
    await repository.createBranch(`cp/bench-${i}`, commit);
    const elapsed = performance.now() - started;
    if (i > 0) times.push(elapsed); // the first one warms the page cache
  }
  times.sort((a, b) => a - b);
  const medianMs = times[Math.floor(times.length / 2)]!;

  let cloneMs: number | undefined;
  if (clone) {
    const target = path.join(dir, 'clone');
    const started = performance.now();
    await runGit(['clone', '--quiet', `file://${gitDir}`, target]);
    cloneMs = performance.now() - started;
  }
  await fs.rm(dir, { recursive: true, force: true });
  return { medianMs, files, ...(cloneMs !== undefined ? { cloneMs } : {}) };
}
