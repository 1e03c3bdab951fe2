import assert from 'node:assert/strict';
import fc from 'fast-check';
import YAML from 'yaml';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { renderInstance, renderInstanceRemoval, renderPlatform, renderWorkspace } from '../../src/gitops/render/change-renderer.ts';
import { instanceDir, tenantBaseDir, UnsafePathError, tenantDir } from '../../src/gitops/tenant-paths.ts';
import type { FileChange } from '../../src/gitops/repository.ts';
import type { InstanceWrite } from '../../src/gitops/render/change-payloads.ts';
import { PLATFORM_BOOTSTRAP } from '../support/change-fixtures.ts';
import { TemplateError } from '../../src/gitops/render/template-substitution.ts';
import { kustomizeAll } from '../support/kustomize.ts';
import { loadConfig } from '../../src/config.ts';

const INSTANCE_ID = '5f0c8a51-8f57-4a57-9c39-2a7f9d7f3b10';

function instancePayload(offering: string, role: string, parameters: Record<string, unknown> = {}): InstanceWrite {
  return { org: 'acme', project: 'default', instanceName: `my-${offering}`, offering, role, version: '1.0.0', templatePath: `templates/offerings/${offering}/1.0.0`, parameters };
}

function written(files: FileChange[]): { path: string; content: string }[] {
  return files.filter((f): f is { path: string; content: string } => 'content' in f);
}

describe('change renderer', () => {
  let catalog: TemplateCatalog;
  before(async () => {
    catalog = await loadTemplateCatalog();
  });

  it('renders a workspace under tenants/<org>/base/: one resource per file, labelled, LF and a trailing newline', () => {
    const files = written(renderWorkspace(catalog, { org: 'acme', orgName: 'Acme', keycloakGroup: '/orgs/acme' }, 'bucketed'));
    assert.ok(files.length >= 1 + catalog.roles.length * 7);
    for (const file of files) {
      assert.ok(file.path.startsWith(`${tenantBaseDir('acme', 'bucketed')}/`), file.path);
      assert.ok(file.content.endsWith('\n') && !file.content.endsWith('\n\n') && !file.content.includes('\r'), file.path);
      const documents = YAML.parseAllDocuments(file.content);
      assert.equal(documents.length, 1, file.path);
      if (file.path.endsWith('kustomization.yaml')) continue;
      const labels = (documents[0]!.toJS() as { metadata: { labels: Record<string, string> } }).metadata.labels;
      assert.equal(labels['app.kubernetes.io/managed-by'], 'control-plane');
      assert.equal(labels['gsv.io/org'], 'acme');
    }
    const objects = files.map((f) => YAML.parse(f.content) as { kind: string; metadata?: { name: string; namespace?: string } });
    const kinds = objects.map((o) => o.kind);
    for (const kind of ['Namespace', 'ResourceQuota', 'LimitRange', 'NetworkPolicy', 'RoleBinding', 'AppProject']) assert.ok(kinds.includes(kind), kind);
    const namespaces = objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata!.name);
    assert.deepEqual(namespaces.sort(), catalog.roles.map((role) => `acme--${role}`).sort());
    for (const o of objects.filter((o) => o.metadata?.namespace && o.kind !== 'AppProject')) assert.ok(namespaces.includes(o.metadata!.namespace!), o.metadata!.namespace);
    assert.deepEqual(objects.filter((o) => o.kind === 'AppProject').map((o) => o.metadata!.name), ['tenant--acme']);
  });

  it('renders the same bytes for the same input (deterministic), whatever the parameter key order', () => {
    const a = renderInstance(catalog, instancePayload('studio', 'studio', { size: 'medium', logLevel: 'debug' }), INSTANCE_ID, 'bucketed');
    const b = renderInstance(catalog, instancePayload('studio', 'studio', { logLevel: 'debug', size: 'medium' }), INSTANCE_ID, 'bucketed');
    assert.deepEqual(a, b);
  });

  it('builds every rendered tree with kubectl kustomize (workspace, every offering, platform)', async function () {
    this.timeout(60_000);
    const files: FileChange[] = [...renderWorkspace(catalog, { org: 'acme', orgName: 'Acme', keycloakGroup: '/orgs/acme' }, 'bucketed')];
    for (const offering of catalog.offerings.values()) {
      files.push(...renderInstance(catalog, instancePayload(offering.slug, offering.role), INSTANCE_ID, 'bucketed'));
    }
    files.push(...renderPlatform(catalog, PLATFORM_BOOTSTRAP));
    const built = await kustomizeAll(written(files));
    assert.equal(built, 1 + catalog.offerings.size + catalog.platform.size);
  });

  it('builds an Argo CD Application with the Helm chart and values from the parameters, labelled with the instance', () => {
    const [application] = written(renderInstance(catalog, instancePayload('runtime', 'runtime', { replicas: 3, size: 'large' }), INSTANCE_ID, 'bucketed')).filter((f) => f.path.endsWith('application.yaml'));
    const app = YAML.parse(application!.content) as {
      metadata: { name: string; labels: Record<string, string> };
      spec: { project: string; destination: { namespace: string }; source: { chart: string; helm: { valuesObject: { replicaCount: number; resources: { limits: { cpu: string } } } } } };
    };
    assert.equal(application!.path, `${instanceDir('acme', 'my-runtime', 'bucketed')}/application.yaml`);
    assert.equal(app.metadata.labels['gsv.io/instance-id'], INSTANCE_ID);
    assert.equal(app.metadata.name, 'app--acme--my-runtime');
    assert.equal(app.spec.project, 'tenant--acme');
    assert.equal(app.spec.destination.namespace, 'acme--runtime');
    assert.equal(app.spec.source.chart, 'langflow-runtime');
    assert.equal(app.spec.source.helm.valuesObject.replicaCount, 3);
    assert.equal(app.spec.source.helm.valuesObject.resources.limits.cpu, '2');
  });

  for (const hostile of ['x\nkind: Secret', '{{ }}', '${org}', 'yes', '- a\n- b', '"quoted" \'single\' # comment']) {
    it(`keeps ${JSON.stringify(hostile)} a quoted string value (no injected keys or documents)`, () => {
      const files = written(renderInstance(catalog, instancePayload('studio', 'studio', { description: hostile }), INSTANCE_ID, 'bucketed'));
      const application = files.find((f) => f.path.endsWith('application.yaml'))!;
      assert.equal(YAML.parseAllDocuments(application.content).length, 1);
      const app = YAML.parse(application.content, { version: '1.1' }) as { kind: string; metadata: { annotations: Record<string, string> } };
      assert.equal(app.kind, 'Application');
      assert.equal(app.metadata.annotations['gsv.io/description'], hostile);
      if (hostile.includes('\n') || hostile.startsWith('{') || hostile === 'yes') {
        const line = application.content.split('\n').find((l) => l.includes('gsv.io/description'))!;
        assert.match(line, /gsv\.io\/description: "/, 'the value is written as a double-quoted string');
      }

      const workspace = written(renderWorkspace(catalog, { org: 'acme', orgName: hostile, keycloakGroup: hostile }, 'bucketed'));
      for (const file of workspace) assert.equal(YAML.parseAllDocuments(file.content).length, 1);
      const binding = YAML.parse(workspace.find((f) => f.path.endsWith('studio/rolebinding-members.yaml'))!.content, { version: '1.1' }) as { subjects: { name: string }[] };
      assert.equal(binding.subjects[0]!.name, hostile);
    });
  }

  it('gives every instance Application the resources finalizer, so that a delete cascades to its workloads', () => {
    // Argo CD deletes an Application's resources only when it carries
    // resources-finalizer.argocd.argoproj.io (docs: user-guide/app_deletion); without it, the
    // parent's prune removes the Application and leaves StatefulSets and PVCs running.
    const offerings = [...catalog.offerings.values()];
    assert.ok(offerings.length >= 3);
    for (const offering of offerings) {
      const payload = { ...instancePayload(offering.slug, offering.role), version: offering.version, templatePath: offering.templatePath };
      const applications = written(renderInstance(catalog, payload, INSTANCE_ID, 'bucketed'))
        .flatMap((f) => YAML.parseAllDocuments(f.content).map((d) => d.toJS() as { kind?: string; metadata?: { finalizers?: string[] } }))
        .filter((o) => o.kind === 'Application');
      assert.ok(applications.length > 0, offering.templatePath);
      for (const app of applications) assert.deepEqual(app.metadata?.finalizers, ['resources-finalizer.argocd.argoproj.io'], offering.templatePath);
    }
  });

  it('lets the tenants\' parent project deploy exactly the namespaced kinds a workspace and every offering version\'s instance directory hold', () => {
    type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
    const objects = (files: FileChange[]) => written(files).filter((f) => !f.path.endsWith('kustomization.yaml')).map((f) => YAML.parse(f.content) as Obj);
    const groupOf = (o: Obj) => (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '');
    const rendered = [
      ...objects(renderWorkspace(catalog, { org: 'acme', orgName: 'Acme', keycloakGroup: '/orgs/acme' }, 'bucketed')),
      ...[...catalog.offerings.values()].flatMap((offering) =>
        objects(renderInstance(catalog, { ...instancePayload(offering.slug, offering.role), version: offering.version, templatePath: offering.templatePath }, INSTANCE_ID, 'bucketed')),
      ),
    ];
    const needed = new Set(rendered.filter((o) => o.kind !== 'Namespace').map((o) => `${groupOf(o)}/${o.kind}`));
    const platform = objects(renderPlatform(catalog, PLATFORM_BOOTSTRAP));
    const project = platform.find((o) => o.kind === 'AppProject' && o.metadata.name === 'platform-tenants')!;
    const whitelist = new Set((project.spec!.namespaceResourceWhitelist as { group: string; kind: string }[]).map((k) => `${k.group}/${k.kind}`));
    assert.deepEqual([...whitelist].sort(), [...needed].sort());
    // applicationsSync is ignored unless the ApplicationSet controller runs with
    // --enable-policy-override (argo-cd docs, "Controlling Resource Modification"): never rely on it.
    for (const set of platform.filter((o) => o.kind === 'ApplicationSet')) {
      assert.equal((set.spec!.syncPolicy as Record<string, unknown> | undefined)?.applicationsSync, undefined, set.metadata.name);
    }
  });

  it("ships the notification keys as a partial of Argo CD's own argocd-notifications-cm, merged by server-side apply, never pruned or deleted", () => {
    const file = written(renderPlatform(catalog, PLATFORM_BOOTSTRAP)).find((f) => f.path.endsWith('/configmap-argocd-notifications.yaml'))!;
    const configMap = YAML.parse(file.content) as { kind: string; metadata: { name: string; annotations?: Record<string, string> }; data: Record<string, string> };
    assert.equal(configMap.metadata.name, 'argocd-notifications-cm');
    const options = (configMap.metadata.annotations?.['argocd.argoproj.io/sync-options'] ?? '').split(',').map((o) => o.trim());
    for (const option of ['ServerSideApply=true', 'Prune=false', 'Delete=false']) assert.ok(options.includes(option), `${option} in ${options.join(',')}`);
    // Only keys of ours: a key Argo CD or a site also writes would be taken over by this apply.
    for (const key of Object.keys(configMap.data)) {
      assert.match(key, /^(service\.webhook\.control-plane|template\.control-plane-[a-z-]+|trigger\.control-plane-[a-z-]+)$/, `${key} is not a key this service owns (Argo CD's catalog and a site's own keys must stay theirs)`);
    }
  });

  it("grants the control plane's ServiceAccount exactly what the Application reconciler calls: list applications.argoproj.io in Argo CD's namespace", () => {
    type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: { template?: { spec?: { serviceAccountName?: string } } }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[]; roleRef?: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace: string }[] };
    const objects = written(renderPlatform(catalog, PLATFORM_BOOTSTRAP)).filter((f) => f.path.includes('/cmp-control-plane/') && !f.path.endsWith('kustomization.yaml')).map((f) => YAML.parse(f.content) as Obj);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const account = { name: deployment.spec!.template!.spec!.serviceAccountName!, namespace: deployment.metadata.namespace! };
    const binding = objects.find((o) => o.kind === 'RoleBinding' && o.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === account.name && s.namespace === account.namespace));
    assert.ok(binding, 'a RoleBinding names the Deployment\'s ServiceAccount');
    // ARGOCD_NAMESPACE's default (src/config.ts) is where the lister asks.
    assert.equal(binding.metadata.namespace, loadConfig({}).reconcile.argocdNamespace);
    const role = objects.find((o) => o.kind === binding.roleRef!.kind && o.metadata.name === binding.roleRef!.name && o.metadata.namespace === binding.metadata.namespace);
    assert.ok(role, 'the Role it binds is rendered beside it');
    assert.deepEqual(role.rules, [{ apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get', 'list', 'watch'] }], 'read-only, Applications only');
  });

  it('refuses parameters the offering version does not accept', () => {
    assert.throws(() => renderInstance(catalog, instancePayload('studio', 'studio', { size: 'huge' }), INSTANCE_ID, 'bucketed'), TemplateError);
    assert.throws(() => renderInstance(catalog, instancePayload('studio', 'studio', { extra: 1 }), INSTANCE_ID, 'bucketed'), TemplateError);
    assert.throws(() => renderInstance(catalog, { ...instancePayload('studio', 'studio'), templatePath: 'templates/offerings/studio/9.9.9' }, INSTANCE_ID, 'bucketed'), TemplateError);
  });

  it('never writes outside tenants/<org>/, whatever the slugs (property)', () => {
    const anyText = fc.oneof(fc.string(), fc.constantFrom('..', '../x', 'a/../../b', '/etc', 'a/b', '.', 'ok', 'acme', 'x\n', 'a--b'));
    fc.assert(
      fc.property(anyText, anyText, (org, name) => {
        let files: FileChange[];
        try {
          files = [
            ...renderInstance(catalog, { ...instancePayload('studio', 'studio'), org, instanceName: name }, INSTANCE_ID, 'bucketed'),
            ...renderInstanceRemoval({ org, project: 'default', instanceName: name, offering: 'studio', role: 'studio' }, 'bucketed'),
            ...renderWorkspace(catalog, { org, orgName: name, keycloakGroup: name }, 'bucketed'),
          ];
        } catch (error) {
          assert.ok(error instanceof UnsafePathError, String(error));
          return;
        }
        for (const file of files) {
          assert.ok(file.path.startsWith(`${tenantDir(org, 'bucketed')}/`));
          assert.ok(!file.path.split('/').some((s) => s === '..' || s === '.' || s === ''));
        }
      }),
      { numRuns: 500 },
    );
  });
});
