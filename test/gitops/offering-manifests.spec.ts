import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { loadTemplateCatalog, TEMPLATES_DIR, type OfferingTemplate, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { renderInstance, renderWorkspace } from '../../src/gitops/render/change-renderer.ts';
import type { FileChange } from '../../src/gitops/repository.ts';
import { CHARTS, type ChartFacts, type Resources } from '../fixtures/charts/chart-facts.ts';
import { amount } from '../support/kubernetes-quantity.ts';

/*
 * What the shipped offerings hand to their charts, checked against what the charts read
 * (test/fixtures/charts/chart-facts.ts) and against the tenant namespace's LimitRange and
 * ResourceQuota. Helm does not run here: the facts say which values feed which container.
 */

const INSTANCE_ID = '5f0c8a51-8f57-4a57-9c39-2a7f9d7f3b10';

interface Application {
  spec: { source: { chart?: string; path?: string; targetRevision: string; helm: { releaseName: string; valuesObject: Values } } };
}
type Values = Record<string, unknown>;
type Parameters = Record<string, unknown>;

function written(files: FileChange[]): { path: string; content: string }[] {
  return files.filter((f): f is { path: string; content: string } => 'content' in f);
}

function renderApplication(catalog: TemplateCatalog, offering: OfferingTemplate, parameters: Parameters, instanceName = `my-${offering.slug}`): Application {
  const payload = { org: 'acme', project: 'default', instanceName, offering: offering.slug, role: offering.role, version: offering.version, templatePath: offering.templatePath, parameters };
  const file = written(renderInstance(catalog, payload, INSTANCE_ID, 'bucketed')).find((f) => f.path.endsWith('/application.yaml'));
  assert.ok(file, `${offering.templatePath} renders an application.yaml`);
  return YAML.parse(file.content) as Application;
}

function chartOf(app: Application, where: string): ChartFacts {
  const { chart, path: chartPath, targetRevision } = app.spec.source;
  const facts = CHARTS.find((c) => c.chart === (chart ?? chartPath) && c.revision === targetRevision);
  assert.ok(facts, `${where} pins ${chart ?? chartPath} ${targetRevision}: read that chart version and add its facts to chart-facts.ts`);
  return facts;
}

function valueAt(values: unknown, dotted: string): unknown {
  let node = values;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Dotted paths of the leaves of `values`; a list is a leaf (Helm replaces lists whole). */
function leafPaths(values: unknown, prefix = ''): string[] {
  if (values === null || typeof values !== 'object' || Array.isArray(values)) return [prefix];
  return Object.entries(values).flatMap(([key, value]) => leafPaths(value, prefix ? `${prefix}.${key}` : key));
}

function documented(facts: ChartFacts, leaf: string): boolean {
  return facts.keys.some((key) => (key.endsWith('.*') ? leaf.startsWith(key.slice(0, -1)) : leaf === key));
}

/** The chart's fullname helper (_helpers.tpl of each chart, the same text in all three). */
function fullname(facts: ChartFacts, release: string, values: Values): string {
  const override = (valueAt(values, 'fullnameOverride') ?? facts.name.fullnameOverride) as string;
  if (override) return override.slice(0, 63).replace(/-+$/, '');
  const name = ((valueAt(values, 'nameOverride') ?? facts.name.nameOverride) as string) || facts.name.chartName;
  return (release.includes(name) ? release : `${release}-${name}`).slice(0, 63).replace(/-+$/, '');
}

/** Every combination of the preset parameters' values, with numeric parameters at their maximum. */
function largestCombinations(offering: OfferingTemplate, schema: { properties: Record<string, { type?: string; maximum?: number }> }): Parameters[] {
  const numeric: Parameters = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    if ((property.type === 'integer' || property.type === 'number') && property.maximum !== undefined) numeric[name] = property.maximum;
  }
  let combinations: Parameters[] = [numeric];
  for (const [name, table] of Object.entries(offering.presets)) {
    const choices = Object.keys(table).map((key) => (key === 'true' ? true : key === 'false' ? false : key));
    combinations = combinations.flatMap((c) => choices.map((choice) => ({ ...c, [name]: choice })));
  }
  return combinations;
}

interface Held {
  offering: OfferingTemplate;
  schema: { properties: Record<string, { type?: string; maximum?: number }> };
}

describe('offering manifests against their charts and the tenant limits', () => {
  let catalog: TemplateCatalog;
  const held: Held[] = [];
  const active: string[] = [];

  before(async () => {
    catalog = await loadTemplateCatalog();
    for (const offering of catalog.offerings.values()) {
      const dir = path.join(TEMPLATES_DIR, 'offerings', offering.slug, offering.version);
      const { status } = YAML.parse(await fs.readFile(path.join(dir, 'version.yaml'), 'utf8')) as { status: string };
      if (status !== 'active') continue;
      active.push(offering.slug);
      held.push({ offering, schema: JSON.parse(await fs.readFile(path.join(dir, 'parameters.schema.json'), 'utf8')) as Held['schema'] });
    }
  });

  it('holds an active version of every offering to these rules', () => {
    assert.deepEqual([...new Set(active)].sort(), [...new Set([...catalog.offerings.values()].map((o) => o.slug))].sort());
    assert.ok(held.length >= 3);
  });

  it('pins chart versions whose sources were read, and sets only values keys those charts document', () => {
    for (const { offering } of held) {
      const app = renderApplication(catalog, offering, {});
      const facts = chartOf(app, offering.templatePath);
      const unknown = leafPaths(app.spec.source.helm.valuesObject).filter((leaf) => !documented(facts, leaf));
      assert.deepEqual(unknown, [], `${offering.templatePath} sets values ${facts.chart} ${facts.revision} does not read (${facts.source})`);
    }
  });

  it('restates the chart\'s entries of every env list it sets (Helm replaces lists), and adds only variables the software reads', () => {
    for (const { offering } of held) {
      const app = renderApplication(catalog, offering, {});
      const facts = chartOf(app, offering.templatePath);
      for (const list of facts.defaultLists) {
        const set = valueAt(app.spec.source.helm.valuesObject, list.path) as { name: string }[] | undefined;
        if (set === undefined) continue;
        const names = set.map((entry) => entry.name);
        assert.deepEqual(list.names.filter((name) => !names.includes(name)), [], `${offering.templatePath} ${list.path} drops the chart's entries`);
        assert.equal(new Set(names).size, names.length, `${offering.templatePath} ${list.path} names an entry twice`);
        const unread = names.filter((name) => !list.read.includes(name));
        assert.deepEqual(unread, [], `${offering.templatePath} ${list.path} sets variables the software does not read`);
      }
    }
  });

  it('leaves credentials to the cluster: sets no value that makes the chart generate them at every render', () => {
    for (const { offering } of held) {
      const app = renderApplication(catalog, offering, {});
      const facts = chartOf(app, offering.templatePath);
      const set = facts.randomCredentials.filter((key) => valueAt(app.spec.source.helm.valuesObject, key) !== undefined);
      assert.deepEqual(set, [], `${offering.templatePath}: with these, ${facts.chart} renders randAlphaNum credentials (OutOfSync under selfHeal)`);
    }
  });

  it('names every object after its instance, so two instances share a namespace', () => {
    for (const { offering } of held) {
      const [a, b] = ['one', 'two'].map((name) => renderApplication(catalog, offering, {}, name));
      const facts = chartOf(a!, offering.templatePath);
      const names = [a!, b!].map((app) => fullname(facts, app.spec.source.helm.releaseName, app.spec.source.helm.valuesObject));
      assert.notEqual(names[0], names[1], `${offering.templatePath}: both instances would be named ${names[0]}`);
    }
  });

  for (const facts of CHARTS.filter((c) => c.fixedNames.length > 0)) {
    // No values key renames these: a second instance in one namespace would share them with the
    // first, and deleting either would prune them from both. The offering runs one per workspace
    // (offering.yaml instancesPerWorkspace, enforced by POST /instances: instance-routes.spec.ts).
    it(`runs one instance per workspace of an offering whose chart (${facts.chart} ${facts.revision}) writes ${facts.fixedNames.join(', ')} with the same name for every release`, async () => {
      const users = held.filter(({ offering }) => chartOf(renderApplication(catalog, offering, {}), offering.templatePath) === facts);
      assert.ok(users.length > 0, `no shipped offering uses ${facts.chart} ${facts.revision}`);
      for (const { offering } of users) {
        const file = YAML.parse(await fs.readFile(path.join(TEMPLATES_DIR, 'offerings', offering.slug, 'offering.yaml'), 'utf8')) as { instancesPerWorkspace?: { max: number; why: string } };
        assert.equal(file.instancesPerWorkspace?.max, 1, `${offering.slug}: two instances in one namespace would share ${facts.fixedNames.join(', ')}`);
        for (const fixed of facts.fixedNames) assert.ok(file.instancesPerWorkspace.why.includes(fixed.split('/')[1]!), `${offering.slug}: the reason names ${fixed}`);
      }
    });
  }

  it('sets requests and limits on every container within the LimitRange max, and a largest instance within the ResourceQuota', () => {
    const workspace = written(renderWorkspace(catalog, { org: 'acme', orgName: 'Acme', keycloakGroup: '/orgs/acme' }, 'bucketed'));
    for (const { offering, schema } of held) {
      const find = (file: string): unknown => YAML.parse(workspace.find((f) => f.path.endsWith(`/${offering.role}/${file}`))!.content);
      const limitRange = find('limitrange.yaml') as { spec: { limits: { type: string; max: Record<string, string> }[] } };
      const quota = (find('resourcequota.yaml') as { spec: { hard: Record<string, string> } }).spec.hard;
      const max = limitRange.spec.limits.find((l) => l.type === 'Container')!.max;
      for (const parameters of largestCombinations(offering, schema)) {
        const where = `${offering.templatePath} ${JSON.stringify(parameters)}`;
        const app = renderApplication(catalog, offering, parameters);
        const values = app.spec.source.helm.valuesObject;
        const facts = chartOf(app, where);
        const sums: Record<string, number> = {};
        const add = (key: string, value: number) => (sums[key] = (sums[key] ?? 0) + value);
        for (const container of facts.containers) {
          const resources = (valueAt(values, container.resources) ?? container.defaultResources ?? {}) as Resources;
          const replicas = typeof container.replicas === 'number' ? container.replicas : ((valueAt(values, container.replicas) as number | undefined) ?? 1);
          for (const resource of ['cpu', 'memory'] as const) {
            const request = resources.requests?.[resource];
            const limit = resources.limits?.[resource];
            assert.ok(request !== undefined && limit !== undefined, `${where}: ${container.name} sets ${resource} requests and limits`);
            assert.ok(amount(resource, request) <= amount(resource, limit), `${where}: ${container.name} ${resource} request ≤ limit`);
            assert.ok(amount(resource, limit) <= amount(resource, max[resource]!), `${where}: ${container.name} ${resource} limit ${limit} ≤ LimitRange max ${max[resource]}`);
            add(`requests.${resource}`, replicas * amount(resource, request));
            add(`limits.${resource}`, replicas * amount(resource, limit));
          }
        }
        for (const claim of facts.claims) {
          add('requests.storage', amount('storage', (valueAt(values, claim.storage) as string | undefined) ?? claim.default));
          add('persistentvolumeclaims', 1);
        }
        for (const [key, total] of Object.entries(sums)) {
          assert.ok(total <= amount(key, quota[key]!), `${where}: ${key} ${total} within the ResourceQuota's ${quota[key]}`);
        }
      }
    }
  });
});
