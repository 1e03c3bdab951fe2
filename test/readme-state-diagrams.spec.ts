import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CHANGE_TRANSITIONS } from '../src/domain/changes/change-status.ts';
import { INSTANCE_STATES } from '../src/domain/instance-state.ts';
import { changeStateDiagram, instanceStateDiagram, README, withDiagrams } from '../scripts/state-diagrams.ts';

describe('README state machine diagrams', () => {
  it('match the transition tables they are generated from', () => {
    const readme = fs.readFileSync(README, 'utf8');
    assert.ok(
      readme === withDiagrams(readme),
      'The state diagrams in README.md no longer match the code: run `node scripts/state-diagrams.ts --write` (Node 24: node_modules/.bin/node) and commit README.md.',
    );
  });

  it('draw every change transition once, parallel events on one arrow', () => {
    const diagram = changeStateDiagram();
    for (const [event, moves] of Object.entries(CHANGE_TRANSITIONS)) {
      for (const [from, to] of Object.entries(moves)) {
        const arrow = diagram.split('\n').filter((line) => line.trim().startsWith(`${from} --> ${to} :`));
        assert.equal(arrow.length, 1, `${from} --> ${to}`);
        assert.match(arrow[0]!, new RegExp(`[:,] ${event}(,|$)`));
      }
    }
  });

  it('reach every instance state from a new instance, along the happy path', () => {
    const diagram = instanceStateDiagram();
    assert.equal(diagram, instanceStateDiagram(), 'deterministic');
    for (const state of INSTANCE_STATES) assert.match(diagram, new RegExp(`--> ${state} :`), state);
    for (const edge of ['requested --> pending_review : change.opened', 'pending_review --> syncing : change.merged', 'syncing --> ready : sync.healthy']) {
      assert.ok(diagram.includes(edge), edge);
    }
    const arrows = diagram.split('\n').filter((line) => line.includes(' --> '));
    assert.equal(new Set(arrows.map((line) => line.split(' : ')[0])).size, arrows.length, 'one arrow per pair of states');
  });

  it('notice a README whose diagram drifted', () => {
    const readme = fs.readFileSync(README, 'utf8');
    const drifted = readme.replace('pending --> open : published', 'pending --> closed : published');
    assert.notEqual(withDiagrams(drifted), drifted);
    assert.throws(() => withDiagrams('no markers'), /lacks the markers/);
  });
});
