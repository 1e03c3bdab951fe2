/**
 * One row of the benchmark table. A row either carries a measured value or says, honestly,
 * why it was not measured; it never carries a made-up number.
 */
export interface Measurement {
  /** Benchmark title, e.g. "API throughput". */
  benchmark: string;
  /** What was measured, e.g. "GET /instances req/s". */
  case: string;
  value?: number;
  unit?: string;
  /** The baseline measured in the same run, when the row compares against one. */
  baseline?: { label: string; value: number };
  /** The target, as text ("≥ 1,000 req/s"), and whether this run met it. */
  target?: string;
  met?: boolean;
  /** Why there is no value (a feature not there yet, a failure during the run). */
  notMeasured?: string;
  /** Anything a reader needs to interpret the number. */
  note?: string;
}

export interface BenchContext {
  /** A PostgreSQL server URL whose user may create and drop databases. */
  adminDatabaseUrl: string;
  /** Smaller counts and shorter runs (used by CI smoke runs and while developing). */
  quick: boolean;
  /** A temporary directory that the runner removes at the end. */
  workDir: string;
  log(message: string): void;
}

export interface Benchmark {
  id: string;
  title: string;
  run(context: BenchContext): Promise<Measurement[]>;
}

export function notMeasured(benchmark: string, cases: string[], reason: string): Measurement[] {
  return cases.map((c) => ({ benchmark, case: c, notMeasured: reason }));
}

/** Ratio of a value to its baseline, or undefined without one. */
export function ratioOf(row: Measurement): number | undefined {
  if (row.value === undefined || !row.baseline || row.baseline.value === 0) return undefined;
  return row.value / row.baseline.value;
}
