import assert from 'node:assert/strict';
import { Webhooks } from '@octokit/webhooks';
import { useSpecDatabase } from '../support/database.ts';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';
import { pushPayload } from '../support/webhook-fixtures.ts';

const SECRET = 'webhook-size-secret';

/**
 * GitHub caps webhook payloads at 25 MB ("Payloads are capped at 25 MB", docs.github.com
 * webhook events and payloads) and does not redeliver a failed delivery by itself: the
 * receiver takes what GitHub may send, as the service is configured, while every other route
 * keeps BODY_LIMIT_BYTES.
 */
describe('GitHub webhook bodies up to GitHub\'s own cap', function () {
  useSpecDatabase();
  this.timeout(60_000);
  let app: InProcessService;
  const signer = new Webhooks({ secret: SECRET });

  before(async () => {
    app = await startInProcessService('webhook-size', { GITHUB_WEBHOOK_SECRET: SECRET, SYNC_SIMULATOR: 'false', BODY_LIMIT_BYTES: '1048576' });
  });
  after(() => app?.close());

  it('accepts a signed 2 MB push delivery (it was a 413 under the 1 MiB limit); other routes still refuse 2 MB with 413', async () => {
    // A push of a large merge: GitHub lists up to 2,048 commits, each with its files.
    const payload = pushPayload('refs/heads/elsewhere', Array.from({ length: 2048 }, (_, i) => i.toString(16).padStart(40, '0')));
    (payload as { commits: { message: string }[] }).commits.forEach((c) => (c.message = 'x'.repeat(1000)));
    const body = JSON.stringify(payload);
    assert.ok(body.length > 2 * 1024 * 1024, String(body.length));
    const delivered = await fetch(`${app.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': await signer.sign(body) },
      body,
    });
    assert.ok(delivered.status < 300, `${delivered.status}: ${await delivered.text()}`);
    const elsewhere = await fetch(`${app.url}/instances`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body });
    assert.equal(elsewhere.status, 413);
  });
});
