import fs from 'node:fs/promises';
import { machineLine, type MachineDescription } from './machine.ts';

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/**
 * Replaces the text between the README's bench markers with this run's table, so the README
 * always shows the numbers of one run and the machine they came from.
 */
export async function updateReadmePerformance(
  readmePath: string,
  run: { table: string; machine: MachineDescription; startedAt: Date; quick: boolean },
): Promise<void> {
  const readme = await fs.readFile(readmePath, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README has no ${START} … ${END} markers in its Performance section`);
  const block = [
    START,
    `Last run: ${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC${run.quick ? ' (--quick)' : ''} on ${machineLine(run.machine)}.`,
    '',
    run.table,
    END,
  ].join('\n');
  await fs.writeFile(readmePath, readme.slice(0, start) + block + readme.slice(end + END.length));
}
