import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startInProcessService, type InProcessService } from './support/in-process-service.ts';
import { useSpecDatabase } from './support/database.ts';

const README = path.resolve(import.meta.dirname, '../README.md');

/** The rows of the README's route table (## API): `| \`METHOD /path\` | access | what |`. */
export function readmeRoutes(readme: string): Map<string, string> {
  const api = readme.slice(readme.indexOf('\n## API\n'), readme.indexOf('\n## ', readme.indexOf('\n## API\n') + 1));
  const rows = new Map<string, string>();
  for (const match of api.matchAll(/^\| `(GET|POST|PUT|PATCH|DELETE) ([^`\s]+)` \| ([a-z-]+) \|/gm)) {
    const route = `${match[1]} ${match[2]}`;
    assert.ok(!rows.has(route), `README lists ${route} twice`);
    rows.set(route, match[3]!);
  }
  return rows;
}

/**
 * The README's API section lists every route the service answers, each once, with who may call
 * it: the table is compared with the routes `startService` wires (what /openapi.json documents),
 * so a route added or removed without the README fails here (issue 14, part 5).
 */
describe('README route table', () => {
  useSpecDatabase();
  let app: InProcessService;
  before(async () => {
    app = await startInProcessService('readme-routes');
  });
  after(() => app?.close());

  it('lists every route of the service, and nothing else, with its access', () => {
    const listed = readmeRoutes(fs.readFileSync(README, 'utf8'));
    const served = new Map(app.service.routes.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r.access]));
    const missing = [...served].filter(([route]) => !listed.has(route)).map(([route, access]) => `| \`${route}\` | ${access} | … |`);
    const stale = [...listed.keys()].filter((route) => !served.has(route));
    assert.deepEqual({ missing, stale }, { missing: [], stale: [] }, 'README.md ## API route table differs from the routes the service serves');
    for (const [route, access] of served) assert.equal(listed.get(route), access, `${route}: README says ${listed.get(route)}, the route is ${access}`);
  });
});
