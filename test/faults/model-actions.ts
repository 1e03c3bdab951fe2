import { seededRandom } from './seeded-random.ts';

/**
 * One step of a model run, abstract: targets are slots (instance names) and picks (an index into
 * whatever list exists when the step runs), so a sequence is fixed by its seed alone and reads
 * back as a log.
 */
export type ModelAction =
  | { t: 'create'; slot: number }
  | { t: 'update'; slot: number; size: 'small' | 'medium' | 'large'; storageSize: number }
  /** PATCH to another version of studio (1.0.0 is deprecated, 2.0.0 active): an upgrade or a downgrade, each with its setup fee. */
  | { t: 'upgrade'; slot: number; version: '1.0.0' | '2.0.0' }
  | { t: 'delete'; slot: number }
  /** The requester cancels, or retries, the latest change of a slot's instance (POST /changes/:id/cancel|retry). */
  | { t: 'cancel' | 'retry'; slot: number }
  /** A person merges, closes or reopens one of the workspace's pull requests in GitHub's UI. */
  | { t: 'merge' | 'close' | 'reopen'; pick: number }
  /** The network: deliver one queued webhook (any order), keep a copy for a duplicate, or lose it. */
  | { t: 'deliver'; pick: number; duplicate: boolean }
  | { t: 'lose'; pick: number }
  /** Argo CD notices what it now runs for a slot's instance (queued: it may arrive late or never). */
  | { t: 'argocd'; slot: number; health: 'Healthy' | 'Degraded' }
  | { t: 'reconcile' }
  | { t: 'drain' }
  /** An engineer commits straight to main: removes a directory, edits parameters, or touches a file. */
  | { t: 'engineer'; slot: number; what: 'remove' | 'edit' | 'touch'; logLevel: 'debug' | 'info' | 'warning' | 'error' }
  | { t: 'kill'; delayMs: number };

export const SLOTS = 3;

/** The sequence of run `index` under `seed`: 10–30 steps, weighted towards what causes races. */
export function generateSequence(seed: number, index: number, options: { kills: boolean }): ModelAction[] {
  const random = seededRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const length = 10 + int(21);
  const weighted: [number, () => ModelAction][] = [
    [14, () => ({ t: 'create', slot: int(SLOTS) })],
    [8, () => ({ t: 'update', slot: int(SLOTS), size: pick(['small', 'medium', 'large'] as const), storageSize: 1 + int(20) })],
    [4, () => ({ t: 'upgrade', slot: int(SLOTS), version: pick(['1.0.0', '2.0.0'] as const) })],
    [8, () => ({ t: 'delete', slot: int(SLOTS) })],
    [5, () => ({ t: 'cancel', slot: int(SLOTS) })],
    [2, () => ({ t: 'retry', slot: int(SLOTS) })],
    [14, () => ({ t: 'merge', pick: int(8) })],
    [6, () => ({ t: 'close', pick: int(8) })],
    [4, () => ({ t: 'reopen', pick: int(8) })],
    [14, () => ({ t: 'deliver', pick: int(8), duplicate: random() < 0.2 })],
    [4, () => ({ t: 'lose', pick: int(8) })],
    [6, () => ({ t: 'argocd', slot: int(SLOTS), health: random() < 0.85 ? 'Healthy' : 'Degraded' })],
    [3, () => ({ t: 'reconcile' })],
    [8, () => ({ t: 'drain' })],
    [4, () => ({ t: 'engineer', slot: int(SLOTS), what: pick(['remove', 'edit', 'touch'] as const), logLevel: pick(['debug', 'info', 'warning', 'error'] as const) })],
    ...(options.kills ? ([[5, () => ({ t: 'kill', delayMs: int(200) })]] as [number, () => ModelAction][]) : []),
  ];
  const total = weighted.reduce((sum, [w]) => sum + w, 0);
  // Requests first, so that the steps after them find pull requests to act on.
  const actions: ModelAction[] = Array.from({ length: 1 + int(3) }, () => ({ t: 'create', slot: int(SLOTS) }) as ModelAction);
  if (random() < 0.7) actions.push({ t: 'drain' });
  while (actions.length < length) {
    let r = random() * total;
    const [, make] = weighted.find(([w]) => (r -= w) < 0) ?? weighted[0]!;
    actions.push(make());
  }
  return actions;
}

/** A compact, readable line per step for failure reports. */
export function describeAction(action: ModelAction): string {
  const { t, ...rest } = action;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`);
  return `${t}(${args.join(' ')})`;
}
