import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.ts';
import { freePort } from '../support/free-port.ts';

describe('the service process', function () {
  this.timeout(120_000);

  describe('embedded default (no DATABASE_URL, no repository configured)', () => {
    let dataDir: string;
    let service: ServiceProcess;
    let startedIn: number;

    before(async () => {
      dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-embedded-'));
      await fs.chmod(dataDir, 0o755);
      const started = Date.now();
      service = await startServiceProcess({ DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(await freePort()) });
      startedIn = Date.now() - started;
    });
    after(async () => {
      if (service.child.exitCode === null) {
        service.child.kill('SIGKILL');
        await service.exited;
      }
      await fs.rm(dataDir, { recursive: true, force: true });
    });

    it('serves /healthz and /readyz within 30 s of starting', async () => {
      assert.ok(startedIn < 30_000, `took ${startedIn} ms`);
      assert.equal((await fetch(`${service.url}/healthz`)).status, 200);
      const ready = await fetch(`${service.url}/readyz`);
      assert.equal(ready.status, 200, await ready.clone().text());
      assert.deepEqual(await ready.json(), { status: 'ok', checks: { database: 'ok', gitops: 'ok' } });
    });

    it('says at start that the membership mirror is off (no KEYCLOAK_URL)', () => {
      assert.match(service.output(), /membership mirror off: KEYCLOAK_URL unset/);
    });

    it('prints a development API token and keeps the repository under DATA_DIR', async () => {
      assert.match(service.developmentToken ?? '', /^cpt_/);
      const stat = await fs.stat(path.join(dataDir, 'gsv-gitops.git', 'HEAD'));
      assert.ok(stat.isFile());
    });

    it('serves a valid OpenAPI 3.1 document describing its routes', async () => {
      const document = (await (await fetch(`${service.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
      await SwaggerParser.validate(structuredClone(document) as never);
      assert.ok(document.paths['/readyz']);
    });

    it('lets an in-flight request finish after SIGTERM, then exits 0', async () => {
      const body = JSON.stringify({ padding: 'x'.repeat(64) });
      const response = new Promise<number>((resolve, reject) => {
        const request = http.request(`${service.url}/healthz`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        });
        request.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        request.on('error', reject);
        // Send half the body, then the signal, then the rest: the request is in flight throughout.
        request.write(body.slice(0, 10));
        setTimeout(() => {
          service.child.kill('SIGTERM');
          setTimeout(() => request.end(body.slice(10)), 1_000);
        }, 200);
      });
      assert.equal(await response, 405);
      assert.equal(await service.exited, 0, service.output());
      assert.match(service.output(), /shutdown complete/);
    });
  });

  it('exits non-zero naming a bad variable', () => {
    const result = spawnSync(process.execPath, ['src/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH, PORT: 'not-a-port', GITOPS_DRIVER: 'svn' },
      encoding: 'utf8',
    });
    assert.equal(result.status, 78);
    assert.match(result.stderr, /PORT="not-a-port" is invalid/);
    assert.match(result.stderr, /GITOPS_DRIVER="svn" is invalid \(expected one of "local", "github"\)/);
  });
});
