import { ratioOf, type Measurement } from './measurement.ts';

const COLUMNS = ['Benchmark', 'Case', 'Result', 'Baseline (same run)', 'Ratio', 'Target', 'Met'] as const;

/** Numbers at a precision that reads well: 3 significant digits, thousands separated. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function cells(row: Measurement): string[] {
  if (row.notMeasured !== undefined) {
    return [row.benchmark, row.case, `not measured: ${row.notMeasured}`, '', '', row.target ?? '', ''];
  }
  const unit = row.unit ? ` ${row.unit}` : '';
  const result = row.value === undefined ? '' : `${formatNumber(row.value)}${unit}`;
  const baseline = row.baseline ? `${formatNumber(row.baseline.value)}${unit} (${row.baseline.label})` : '';
  const ratio = ratioOf(row);
  const met = row.met === undefined ? '' : row.met ? 'yes' : 'no';
  const note = row.note ? ` — ${row.note}` : '';
  return [row.benchmark, row.case, `${result}${note}`, baseline, ratio === undefined ? '' : `${formatNumber(ratio)}×`, row.target ?? '', met];
}

/** One Markdown table: readable in a terminal and pasted as is into the README. */
export function renderTable(rows: Measurement[]): string {
  const body = rows.map((row) => cells(row).map((cell) => cell.replaceAll('|', '\\|')));
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...body.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(COLUMNS), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n');
}
