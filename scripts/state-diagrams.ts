// The README's state machine diagrams, generated from the code that decides the states, so a
// diagram cannot say something the code does not do. `node scripts/state-diagrams.ts` prints
// both; `--write` rewrites them in README.md between their markers. test/readme-state-diagrams
// .spec.ts fails when the README and this output differ.
import fs from 'node:fs';
import path from 'node:path';
import { CHANGE_EVENTS, CHANGE_STATUSES, CHANGE_TRANSITIONS, type ChangeEvent, type ChangeStatus } from '../src/domain/changes/change-status.ts';
import type { InstanceChangeKind } from '../src/domain/changes/change-kinds.ts';
import { applyEventToFacts, deriveInstanceState, INSTANCE_STATES, REQUESTED_FACTS, type InstanceEventType, type InstanceFacts, type InstanceState } from '../src/domain/instance-state.ts';

interface Edge {
  from: string;
  to: string;
  cause: string;
}

/** Mermaid text for `edges`: parallel edges share one arrow, labels and arrows in a fixed order. */
function mermaid(initial: string, edges: Edge[], order: readonly string[]): string {
  const merged = new Map<string, { from: string; to: string; causes: Set<string> }>();
  for (const edge of edges) {
    if (edge.from === edge.to) continue;
    const key = `${edge.from} ${edge.to}`;
    const entry = merged.get(key) ?? { from: edge.from, to: edge.to, causes: new Set<string>() };
    entry.causes.add(edge.cause);
    merged.set(key, entry);
  }
  const rank = (state: string) => order.indexOf(state);
  const lines = [...merged.values()]
    .sort((a, b) => rank(a.from) - rank(b.from) || rank(a.to) - rank(b.to))
    .map(({ from, to, causes }) => `    ${from} --> ${to} : ${[...causes].sort().join(', ')}`);
  return ['```mermaid', 'stateDiagram-v2', `    [*] --> ${initial}`, ...lines, '```'].join('\n');
}

/** The change status machine, straight from CHANGE_TRANSITIONS. */
export function changeStateDiagram(): string {
  const edges: Edge[] = [];
  for (const event of CHANGE_EVENTS) {
    for (const [from, to] of Object.entries(CHANGE_TRANSITIONS[event]) as [ChangeStatus, ChangeStatus][]) edges.push({ from, to, cause: event });
  }
  return mermaid('pending', edges, CHANGE_STATUSES);
}

/** The instance event a change event is recorded as. */
const CHANGE_CAUSE: Record<ChangeEvent, string> = {
  published: 'change.opened',
  merged: 'change.merged',
  closed: 'change.closed',
  reopened: 'change.reopened',
  failed: 'change.failed',
  superseded: 'change.superseded',
  cancelled: 'change.cancelled',
};

const EXTERNAL_EVENTS: InstanceEventType[] = ['sync.healthy', 'sync.degraded', 'sync.failed', 'app.gone', 'wallet.exhausted'];


/**
 * Every way the service changes an instance's facts, with the cause it records: the latest
 * change's status moves per CHANGE_TRANSITIONS; a new latest change (PATCH, DELETE, or the
 * service's proposal after a stale merge); main read back after the latest change merged (its
 * spec present, or its directory absent after a delete, as recordObservation writes it); and
 * Argo CD's and the wallet's events through applyEventToFacts. Commits a person makes on main
 * are left out: they can put any instance's directory there or take it away at any moment, and
 * would join nearly every pair of states.
 */
function factMoves(facts: InstanceFacts): { cause: string; facts: InstanceFacts }[] {
  const moves: { cause: string; facts: InstanceFacts }[] = [];
  const latest = facts.latest;
  if (latest) {
    for (const event of CHANGE_EVENTS) {
      // A latest change is superseded only by a newer one, which is a request below.
      if (event === 'superseded') continue;
      const status = CHANGE_TRANSITIONS[event][latest.status];
      // Cancelling a delete wants the instance again (cancelChange puts desired_state back).
      const wanted = event === 'cancelled' && latest.kind === 'instance.delete' ? 'present' : facts.wanted;
      if (status) moves.push({ cause: CHANGE_CAUSE[event], facts: { ...facts, latest: { kind: latest.kind, status }, readBack: status !== 'merged', wanted } });
    }
  }
  const state = deriveInstanceState(facts);
  const request = (kind: InstanceChangeKind, cause: string) =>
    moves.push({ cause, facts: { ...facts, latest: { kind, status: 'pending' }, readBack: true, wanted: kind === 'instance.delete' ? 'absent' : 'present' } });
  // updateInstance refuses deleted, rejected and instances being deleted; deleteInstance refuses deleted.
  if (state !== 'deleted' && state !== 'rejected' && facts.wanted === 'present') request('instance.update', 'update.requested');
  if (state !== 'deleted') {
    if (facts.observed === 'absent' && !facts.everPresent && latest?.status !== 'merged') {
      // Main never held it: deleted without a Git change, its changes on the way cancelled.
      const cancelled = latest && CHANGE_TRANSITIONS.cancelled[latest.status];
      moves.push({ cause: 'delete.requested', facts: { ...facts, latest: latest && cancelled ? { kind: latest.kind, status: cancelled } : latest, wanted: 'absent' } });
    } else {
      request('instance.delete', 'delete.requested');
    }
  }
  if (latest?.status === 'merged' && !facts.readBack) {
    // A changed directory resets Argo CD's word, except that a gone Application stays gone while absent.
    const observed: InstanceFacts =
      latest.kind === 'instance.delete'
        ? { ...facts, observed: 'absent', health: facts.health === 'gone' ? 'gone' : 'unknown', suspended: false, readBack: true }
        : { ...facts, observed: 'present', everPresent: true, health: 'unknown', readBack: true };
    moves.push({ cause: 'main.observed', facts: observed });
  }
  for (const event of EXTERNAL_EVENTS) moves.push({ cause: event, facts: { ...applyEventToFacts(facts, event), readBack: facts.readBack } });
  // A person merges another instance's old create at this one's path (applyInstanceEvents).
  if (facts.observed === 'absent' && !facts.displaced) moves.push({ cause: 'git.name-held', facts: { ...facts, displaced: true } });
  return moves;
}

/** The instance state machine: every state change reachable from a new instance's facts. */
export function instanceStateDiagram(): string {
  const initial: InstanceFacts = REQUESTED_FACTS;
  const key = (f: InstanceFacts) => JSON.stringify([f.observed, f.everPresent, f.latest?.kind, f.latest?.status, f.health, f.suspended, f.displaced, f.readBack, f.wanted]);
  const seen = new Set([key(initial)]);
  const queue = [initial];
  const edges: Edge[] = [];
  for (let facts = queue.shift(); facts; facts = queue.shift()) {
    const from = deriveInstanceState(facts);
    for (const move of factMoves(facts)) {
      edges.push({ from, to: deriveInstanceState(move.facts), cause: move.cause });
      if (!seen.has(key(move.facts))) {
        seen.add(key(move.facts));
        queue.push(move.facts);
      }
    }
  }
  return mermaid(deriveInstanceState(initial), edges, INSTANCE_STATES satisfies readonly InstanceState[]);
}

export const DIAGRAMS = [
  { name: 'instance-states', render: instanceStateDiagram },
  { name: 'change-states', render: changeStateDiagram },
] as const;

/** `readme` with each diagram replaced between `<!-- <name>:begin -->` and `<!-- <name>:end -->`. */
export function withDiagrams(readme: string): string {
  let text = readme;
  for (const { name, render } of DIAGRAMS) {
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const start = text.indexOf(begin);
    const stop = text.indexOf(end);
    if (start < 0 || stop < start) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
    text = `${text.slice(0, start + begin.length)}\n${render()}\n${text.slice(stop)}`;
  }
  return text;
}

export const README = path.resolve(import.meta.dirname, '..', 'README.md');

if (import.meta.main) {
  if (process.argv.includes('--write')) {
    fs.writeFileSync(README, withDiagrams(fs.readFileSync(README, 'utf8')));
    console.log(`Rewrote the state diagrams in ${README}`);
  } else {
    for (const { name, render } of DIAGRAMS) console.log(`${name}:\n${render()}\n`);
  }
}
