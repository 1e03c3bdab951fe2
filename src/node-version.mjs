// Plain JavaScript on purpose: it must load on any Node, including those that cannot read
// TypeScript (Node 20 refuses `.ts` with ERR_UNKNOWN_FILE_EXTENSION before running a line of it).
// `npm start` and the other scripts load it with `--import` before their `.ts` entry; the entries
// import it first too, for a Node that strips types but is not the pinned one (22.18+, 23.6+).
import { readFileSync } from 'node:fs';

/**
 * Why `version` (e.g. "20.20.2") cannot run control-plane, or undefined when it can. `range` is
 * package.json's engines.node, written as `>=A.B.C <D` (the only form this reads).
 */
export function nodeVersionProblem(version, range) {
  const bounds = /^>=(\d+)\.(\d+)\.(\d+) <(\d+)$/.exec(range);
  if (!bounds) return `package.json engines.node is "${range}"; this check reads only ">=A.B.C <D"`;
  const [major, minor, patch] = version.split('.').map(Number);
  const [lowMajor, lowMinor, lowPatch, below] = bounds.slice(1).map(Number);
  const atLeast = major !== lowMajor ? major > lowMajor : minor !== lowMinor ? minor > lowMinor : patch >= lowPatch;
  if (atLeast && major < below) return undefined;
  return (
    `control-plane needs Node ${range} (this is Node ${version}, ${process.execPath}). ` +
    'Run it with `npm start` (or `npm run migrate`, `npm run token`, `npm run bootstrap`), which uses the Node ' +
    'pinned in package.json from node_modules (`npm ci` installs it), or `npm exec -- node src/main.ts`.'
  );
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const problem = nodeVersionProblem(process.versions.node, pkg.engines.node);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
