import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.ts';
import { freePort } from '../support/free-port.ts';

/**
 * The newcomer's path on the embedded default (no DATABASE_URL, no cluster): a workspace, an
 * instance, a merge, and the instance reaches ready through the change worker, the local pull
 * request, and the sync simulator posting Argo CD notifications to the webhook.
 */
describe('end to end on the embedded default: requested → ready', function () {
  this.timeout(180_000);
  let dataDir: string;
  let service: ServiceProcess;
  let readyInstance: string | undefined;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-e2e-'));
    await fs.chmod(dataDir, 0o755);
    service = await startServiceProcess({ DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(await freePort()) });
  });
  after(async () => {
    if (service.child.exitCode === null) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  async function call(method: string, url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${service.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${service.developmentToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** Polls the instance until `done` holds (the worker and the simulator run in the background). */
  async function waitForInstance(id: string, done: (instance: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    let last: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 300; attempt += 1) {
      last = (await call('GET', `/instances/${id}`)).body;
      if (done(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.fail(`instance never got there; last seen: ${JSON.stringify(last)}\n${service.output().slice(-3000)}`);
  }

  it('POST /orgs/auto, POST /instances, merge the pull request: the instance is ready, every step an event', async () => {
    const org = await call('POST', '/orgs/auto');
    assert.ok(org.status === 201 || org.status === 200, JSON.stringify(org.body));
    const slug = String(org.body.slug);

    const created = await call('POST', '/instances', { org: slug, offering: 'studio', name: 'my-studio' });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.equal(created.body.state, 'requested');
    const id = String(created.body.id);

    const reviewing = await waitForInstance(id, (i) => i.state === 'pending_review');
    const changes = reviewing.changes as Array<{ id: string; status: string; pullRequestNumber: number | null }>;
    const change = changes.find((c) => c.status === 'open');
    assert.ok(change, JSON.stringify(changes));

    // The workspace's own change shares the instance's pull request when the worker batched them,
    // and is a pull request of its own when it claimed the workspace first (a lone change does not
    // wait): the instance syncs only once its tenant base is on main, so merge that one first.
    const open = await call('GET', `/changes?org=${slug}&status=open`);
    const workspaceChange = (open.body.items as Array<{ id: string; kind: string; pullRequestNumber: number | null }>).find(
      (c) => c.kind === 'workspace.create' && c.pullRequestNumber !== change.pullRequestNumber,
    );
    if (workspaceChange) assert.equal((await call('POST', `/changes/${workspaceChange.id}/merge`)).status, 200);
    const merged = await call('POST', `/changes/${change.id}/merge`);
    assert.equal(merged.status, 200, JSON.stringify(merged.body));

    const ready = await waitForInstance(id, (i) => i.state === 'ready' || i.state === 'failed');
    assert.equal(ready.state, 'ready', JSON.stringify(ready));
    const events = ready.events as Array<{ toState: string }>;
    assert.deepEqual(events.map((e) => e.toState), ['requested', 'pending_review', 'syncing', 'ready']);
    readyInstance = id;
  });

  it('DELETE /instances/:id, merge the removal: the instance is deleted', async () => {
    assert.ok(readyInstance, 'needs the instance of the previous test');
    const deleting = await call('DELETE', `/instances/${readyInstance}`);
    assert.equal(deleting.status, 202, JSON.stringify(deleting.body));
    const opened = await waitForInstance(readyInstance, (i) => (i.changes as Array<{ kind: string; status: string }>).some((c) => c.kind === 'instance.delete' && c.status === 'open'));
    const removal = (opened.changes as Array<{ id: string; kind: string; status: string }>).find((c) => c.kind === 'instance.delete' && c.status === 'open')!;
    assert.equal((await call('POST', `/changes/${removal.id}/merge`)).status, 200);
    const gone = await waitForInstance(readyInstance, (i) => i.state === 'deleted');
    assert.equal((gone.events as Array<{ toState: string }>).at(-1)!.toState, 'deleted');
  });
});
