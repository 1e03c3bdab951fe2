import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { nodeVersionProblem } from '../src/node-version.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };
/** The machine's own Node, older than the pinned one here (Debian's 20): what `node …` outside npm finds. */
const SYSTEM_NODE = '/usr/bin/node';

function run(node: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(node, args, { cwd: ROOT, env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' }, timeout: 30_000 }, (error, _stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

describe('the Node version check (issue 14, part 4)', () => {
  it('accepts the pinned range only, and says which Node to use otherwise', () => {
    const range = pkg.engines.node;
    assert.equal(nodeVersionProblem(process.versions.node, range), undefined, 'the Node running this spec is the pinned one');
    assert.equal(nodeVersionProblem('24.11.0', '>=24.11.0 <25'), undefined);
    assert.equal(nodeVersionProblem('24.30.1', '>=24.11.0 <25'), undefined);
    for (const old of ['20.20.2', '22.18.0', '24.10.9', '25.0.0', '24.9.10']) {
      assert.match(nodeVersionProblem(old, '>=24.11.0 <25') ?? '', new RegExp(`^control-plane needs Node >=24\\.11\\.0 <25 \\(this is Node ${old.replace(/\./g, '\\.')}, .*\\bnpm start\\b`), old);
    }
    assert.match(nodeVersionProblem('24.11.0', '^24') ?? '', /reads only/);
  });

  it('runs before every npm script entry, so an older Node says so instead of ERR_UNKNOWN_FILE_EXTENSION', async function () {
    const system = fs.existsSync(SYSTEM_NODE) ? (await run(SYSTEM_NODE, ['--version'])).code : null;
    if (system !== 0) this.skip();
    const version = (await new Promise<string>((resolve) => execFile(SYSTEM_NODE, ['-p', 'process.versions.node'], (_e, out) => resolve(out.trim()))));
    if (nodeVersionProblem(version, pkg.engines.node) === undefined) this.skip(); // this machine's Node is a right one
    for (const name of ['start', 'migrate', 'token', 'bootstrap']) {
      const [node, ...args] = pkg.scripts[name]!.split(' ');
      assert.equal(node, 'node', name);
      const { code, stderr } = await run(SYSTEM_NODE, args);
      assert.equal(code, 1, `${name}: ${stderr}`);
      assert.match(stderr, /^control-plane needs Node >=24/, name);
      assert.doesNotMatch(stderr, /ERR_UNKNOWN_FILE_EXTENSION/, name);
    }
  });
});
