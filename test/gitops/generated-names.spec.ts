import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import { loadTemplateCatalog, TEMPLATES_DIR } from '../../src/gitops/render/template-catalog.ts';
import { renderPlatform } from '../../src/gitops/render/change-renderer.ts';
import {
  instanceApplicationName,
  instanceDir,
  isSlug,
  NAME_MAX,
  parentApplicationName,
  SLUG_MAX,
  tenantBaseApplicationName,
  tenantBaseDir,
  tenantBucket,
  tenantDir,
  TENANT_LAYOUTS,
  tenantNamespace,
  type TenantLayout,
  tenantProject,
  UnsafePathError,
  type SlugKind,
} from '../../src/gitops/tenant-paths.ts';
import { orgSlugBase, orgSlugCandidates } from '../../src/domain/workspaces.ts';
import { gitDirectoryParams, renderApplicationSetFields } from '../support/applicationset-engine.ts';
import { PLATFORM_BOOTSTRAP } from '../support/change-fixtures.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Valid slugs of a kind, mostly from a tiny universe (runs of `a`, `b` and the kind words), so
 * that near-misses like `a-b`/`a` and `a`/`b-a`, or org `tenant`, come up often: the collisions
 * of the old `-` joins needed exactly such pairs. Some long ones test the length limits.
 */
function slugOf(kind: SlugKind): fc.Arbitrary<string> {
  const tiny = fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 3 }).map((runs) => runs.join('-'));
  const words = fc.array(fc.constantFrom('a', 'app', 'apps', 'tenant', 'base', '0'), { minLength: 1, maxLength: 3 }).map((runs) => runs.join('-'));
  const long = fc.array(fc.stringMatching(/^[a-z0-9]{1,12}$/), { minLength: 1, maxLength: 6 }).map((runs) => runs.join('-').slice(0, SLUG_MAX[kind]).replace(/-+$/, ''));
  return fc.oneof({ arbitrary: tiny, weight: 3 }, { arbitrary: words, weight: 2 }, { arbitrary: long, weight: 1 }).filter((value) => isSlug(value, kind));
}

interface Inputs {
  org: string;
  name: string;
  role: string;
}
const inputs: fc.Arbitrary<Inputs> = fc.record({ org: slugOf('org'), name: slugOf('instanceName'), role: slugOf('role') });

type Kind = 'instance-application' | 'parent-application' | 'tenant-base-application' | 'namespace' | 'app-project';
/** The inputs a kind's name depends on. */
const DEPENDS_ON: Record<Kind, (keyof Inputs)[]> = {
  'instance-application': ['org', 'name'],
  'parent-application': ['org', 'name'],
  'tenant-base-application': ['org'],
  namespace: ['org', 'role'],
  'app-project': ['org'],
};
/**
 * Names that must differ: Kubernetes names are unique per kind of object (and namespace), and an
 * Application's name is also the value of the tracking label on everything it deploys. Argo CD
 * Applications of all three kinds share the argocd namespace; namespaces and AppProjects are
 * other kinds of objects, so `tenant--bob` as an AppProject and as an Application is fine.
 */
const SCOPES: Kind[][] = [['instance-application', 'parent-application', 'tenant-base-application'], ['namespace'], ['app-project']];

function generated({ org, name, role }: Inputs): Record<Kind, string> {
  return {
    'instance-application': instanceApplicationName(org, name),
    'parent-application': parentApplicationName(org, name),
    'tenant-base-application': tenantBaseApplicationName(org),
    namespace: tenantNamespace(org, role),
    'app-project': tenantProject(org),
  };
}

/** Every string under a `name`, `namespace` or `project` key, at any depth. */
function namesIn(value: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const item of value) namesIn(item, out);
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (['name', 'namespace', 'project'].includes(key) && typeof inner === 'string' && DNS_LABEL.test(inner)) out.add(inner);
      else namesIn(inner, out);
    }
  }
  return out;
}

/**
 * Names the platform uses or reserves: every name in the platform's rendered manifests, the
 * names templates/repository's READMEs mention, and the namespaces and Applications of the
 * cluster and platform around this service (Kubernetes' own, Argo CD's, SSO, Vault, the
 * ingress controller, the app of apps).
 */
async function platformNames(): Promise<Set<string>> {
  const names = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease', 'argocd', 'cmp', 'sso', 'vault', 'ingress-nginx', 'platform-apps', 'in-cluster']);
  for (const file of renderPlatform(await loadTemplateCatalog(), PLATFORM_BOOTSTRAP)) {
    if ('content' in file) namesIn(YAML.parse(file.content), names);
  }
  const repository = path.join(TEMPLATES_DIR, 'repository');
  for (const entry of await fs.readdir(repository, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.md')) continue;
    const text = await fs.readFile(path.join(entry.parentPath, entry.name), 'utf8');
    for (const [, code] of text.matchAll(/`([^`]+)`/g)) for (const part of code!.split('/')) if (DNS_LABEL.test(part)) names.add(part);
  }
  return names;
}

describe('generated names', () => {
  let reserved: Set<string>;
  before(async () => {
    reserved = await platformNames();
  });

  it('no longer collide where the old `-` joins did (issue 12)', () => {
    // Old: bob/x-y and bob-x/y were both bob-x-y; org tenant's instance bob was tenant-bob, org bob's tenant base.
    assert.notEqual(instanceApplicationName('bob', 'x-y'), instanceApplicationName('bob-x', 'y'));
    assert.notEqual(parentApplicationName('bob', 'x-y'), parentApplicationName('bob-x', 'y'));
    assert.notEqual(parentApplicationName('tenant', 'bob'), tenantBaseApplicationName('bob'));
    assert.notEqual(instanceApplicationName('tenant', 'bob'), tenantBaseApplicationName('bob'));
    assert.notEqual(tenantNamespace('bob', 'x-studio'), tenantNamespace('bob-x', 'studio'));
    assert.deepEqual(generated({ org: 'bob', name: 'x-y', role: 'studio' }), {
      'instance-application': 'app--bob--x-y',
      'parent-application': 'apps--bob--x-y',
      'tenant-base-application': 'tenant--bob',
      namespace: 'bob--studio',
      'app-project': 'tenant--bob',
    });
  });

  it('are equal only for equal inputs, within each kind of object (property)', () => {
    fc.assert(
      fc.property(inputs, inputs, (a, b) => {
        const [left, right] = [generated(a), generated(b)];
        for (const scope of SCOPES) {
          for (const kindA of scope) {
            for (const kindB of scope) {
              if (left[kindA] !== right[kindB]) continue;
              assert.equal(kindA, kindB, `${kindA} of ${JSON.stringify(a)} = ${kindB} of ${JSON.stringify(b)} = ${left[kindA]}`);
              for (const input of DEPENDS_ON[kindA]) assert.equal(a[input], b[input], `${kindA} ${left[kindA]} from ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
            }
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('are DNS-1123 labels of at most 63 characters, the longest slugs included (property)', () => {
    const longest = { org: 'o'.repeat(SLUG_MAX.org), name: 'n'.repeat(SLUG_MAX.instanceName), role: 'r'.repeat(SLUG_MAX.role) };
    assert.equal(parentApplicationName(longest.org, longest.name).length, NAME_MAX, 'the budget is spent exactly by the longest kind');
    fc.assert(
      fc.property(fc.oneof(inputs, fc.constant(longest)), (input) => {
        for (const [kind, name] of Object.entries(generated(input))) {
          assert.ok(name.length <= NAME_MAX && DNS_LABEL.test(name), `${kind} ${name} (${name.length})`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('cannot equal a platform name: every one has `--`, no platform name does (property)', () => {
    assert.ok(reserved.has('tenant-apps') && reserved.has('platform-tenants') && reserved.has('cmp-control-plane'), [...reserved].join(' '));
    for (const name of reserved) assert.ok(!name.includes('--'), `platform name ${name} must not contain "--": tenant names are told apart from platform names by it`);
    fc.assert(
      fc.property(inputs, (input) => {
        for (const [kind, name] of Object.entries(generated(input))) {
          assert.ok(name.includes('--') && !reserved.has(name), `${kind} ${name}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuse slugs with `--`, or too long for their kind, before building anything', () => {
    for (const org of ['bob--x', 'a--', '--a', 'o'.repeat(SLUG_MAX.org + 1)]) {
      assert.equal(isSlug(org, 'org'), false, org);
      assert.throws(() => tenantNamespace(org, 'studio'), UnsafePathError);
      assert.throws(() => instanceApplicationName(org, 'x'), UnsafePathError);
      assert.throws(() => tenantBaseApplicationName(org), UnsafePathError);
      assert.throws(() => tenantDir(org, 'bucketed'), UnsafePathError);
      assert.throws(() => tenantBucket(org), UnsafePathError);
    }
    for (const name of ['x--y', 'n'.repeat(SLUG_MAX.instanceName + 1)]) {
      assert.throws(() => instanceDir('bob', name, 'bucketed'), UnsafePathError);
      assert.throws(() => parentApplicationName('bob', name), UnsafePathError);
    }
    assert.throws(() => tenantNamespace('bob', 'a--b'), UnsafePathError);
    assert.throws(() => tenantNamespace('bob', 'r'.repeat(SLUG_MAX.role + 1)), UnsafePathError);
  });

  it('of workspaces: every slug derived from a display name is a valid org slug, never with `--` (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: fc.constantFrom('a', '-', '_', '.', ' ', 'Ä', 'ﬀ'), maxLength: 80 })), (username) => {
        const base = orgSlugBase({ subject: 's', username });
        const candidates = orgSlugCandidates(base);
        const tried = [...Array.from({ length: 101 }, () => candidates.next().value as string)];
        for (const slug of tried) assert.ok(isSlug(slug, 'org'), `${JSON.stringify(username)} → ${slug}`);
      }),
      { numRuns: 300 },
    );
    assert.equal(orgSlugBase({ subject: 's', username: 'a--b__c  d' }), 'a-b-c-d');
  });

  it('of the ApplicationSets: their Go templates build exactly the names tenant-paths.ts does, in both layouts', async function () {
    this.timeout(120_000);
    const expected: Record<string, { directory: (input: Inputs, layout: TenantLayout) => string; name: (input: Inputs) => string }> = {
      'tenant-apps': { directory: (i, layout) => instanceDir(i.org, i.name, layout), name: (i) => parentApplicationName(i.org, i.name) },
      'tenant-base': { directory: (i, layout) => tenantBaseDir(i.org, layout), name: (i) => tenantBaseApplicationName(i.org) },
    };
    const samples = [
      { org: 'bob', name: 'x-y', role: 'studio' },
      { org: 'bob-x', name: 'y', role: 'studio' },
      // Orgs named like the fixed directories: their paths must not be read as another kind's.
      { org: 'apps', name: 'base', role: 'studio' },
      { org: 'base', name: 'apps', role: 'studio' },
      { org: 'o'.repeat(SLUG_MAX.org), name: 'n'.repeat(SLUG_MAX.instanceName), role: 'studio' },
      ...fc.sample(inputs, { numRuns: 300, seed: 12 }),
    ];
    const sets = renderPlatform(await loadTemplateCatalog(), PLATFORM_BOOTSTRAP)
      .filter((file): file is { path: string; content: string } => 'content' in file)
      .map((file) => YAML.parse(file.content) as { kind: string; metadata: { name: string }; spec: ApplicationSetSpec })
      .filter((object) => object.kind === 'ApplicationSet');
    assert.deepEqual(sets.map((set) => set.metadata.name).sort(), ['tenant-apps', 'tenant-base']);
    // The git directory generator's glob (argo-cd: path.Match, `*` within one segment); an
    // excluded directory is out whatever includes it.
    const globOf = (pattern: string) => new RegExp(`^${pattern.replaceAll('*', '[^/]+')}$`);
    const generated = (set: ApplicationSetSpec, dir: string) => {
      const entries = set.generators.flatMap((generator) => generator.git.directories);
      return entries.some((e) => !e.exclude && globOf(e.path).test(dir)) && !entries.some((e) => e.exclude && globOf(e.path).test(dir));
    };
    for (const set of sets) {
      assert.equal(set.spec.goTemplate, true, set.metadata.name);
      const kind = expected[set.metadata.name]!;
      const other = sets.find((s) => s !== set)!;
      const { name, labels } = set.spec.template.metadata;
      const templates = { name, ...Object.fromEntries(Object.entries(labels).map(([key, value]) => [`label:${key}`, value])) };
      for (const layout of TENANT_LAYOUTS) {
        const dirs = samples.map((sample) => kind.directory(sample, layout));
        const rendered = await renderApplicationSetFields(set.spec.goTemplateOptions ?? [], templates, dirs.map((dir) => gitDirectoryParams(dir)));
        samples.forEach((sample, index) => {
          assert.ok(generated(set.spec, dirs[index]!), `${set.metadata.name} generates nothing for ${dirs[index]}`);
          assert.ok(!generated(other.spec, dirs[index]!), `${other.metadata.name} also generates an Application for ${dirs[index]}`);
          assert.equal(rendered[index]!.name, kind.name(sample), `${set.metadata.name} for ${dirs[index]}`);
          assert.equal(rendered[index]!['label:gsv.io/org'], sample.org);
        });
        // The org's own directory and its bucket are nobody's Application.
        for (const sample of samples.slice(0, 5)) {
          for (const dir of [tenantDir(sample.org, layout), `tenants/${tenantBucket(sample.org)}`]) assert.ok(!generated(set.spec, dir), `${set.metadata.name} generates one for ${dir}`);
        }
      }
    }
  });
});

interface ApplicationSetSpec {
  goTemplate?: boolean;
  goTemplateOptions?: string[];
  generators: { git: { directories: { path: string; exclude?: boolean }[] } }[];
  template: { metadata: { name: string; labels: Record<string, string> } };
}
