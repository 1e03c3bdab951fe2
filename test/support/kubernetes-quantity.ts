/**
 * Kubernetes resource quantities as numbers, for comparing rendered requests and limits with a
 * LimitRange or ResourceQuota: CPU in millicores, everything else in bytes (or units). Covers
 * the suffixes the templates use (m, k/M/G/T, Ki/Mi/Gi/Ti); anything else throws.
 */
const SUFFIXES: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

export function quantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(value);
  if (!match || !Object.hasOwn(SUFFIXES, match[2]!)) throw new Error(`not a quantity this test reads: ${JSON.stringify(value)}`);
  return Number(match[1]) * SUFFIXES[match[2]!]!;
}

/** `resource` is `cpu` (compared in millicores, so 0.5 and 500m are equal) or any other resource name. */
export function amount(resource: string, value: string | number): number {
  const base = quantity(value);
  return resource.endsWith('cpu') ? Math.round(base * 1000) : base;
}
