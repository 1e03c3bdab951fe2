/**
 * The change request status machine: pure, the one place that says which event moves a change
 * from which status to which. Git is the truth, so a change seen on the base branch is merged
 * whatever it was before (even closed or superseded: a person may reopen and merge anything),
 * and a closed or superseded pull request may be reopened.
 */
export const CHANGE_STATUSES = ['pending', 'open', 'merged', 'closed', 'failed', 'superseded', 'cancelled'] as const;
export type ChangeStatus = (typeof CHANGE_STATUSES)[number];

export const CHANGE_EVENTS = ['published', 'merged', 'closed', 'reopened', 'failed', 'superseded', 'cancelled'] as const;
export type ChangeEvent = (typeof CHANGE_EVENTS)[number];

/** from → to for each event; a status not listed under an event does not move on it. */
export const CHANGE_TRANSITIONS: Record<ChangeEvent, Partial<Record<ChangeStatus, ChangeStatus>>> = {
  /** The worker committed it and opened (or adopted) its pull request. */
  published: { pending: 'open' },
  /** It reached the base branch: merged PR, direct commit, or its commit seen on main. */
  merged: { pending: 'merged', open: 'merged', closed: 'merged', superseded: 'merged', failed: 'merged', cancelled: 'merged' },
  /** Its pull request was closed without merging. */
  closed: { open: 'closed' },
  /** Its pull request was reopened. */
  reopened: { closed: 'open', superseded: 'open', cancelled: 'open' },
  /** It cannot be committed at all (a rendering error, a backend refusal, too many attempts). */
  failed: { pending: 'failed' },
  /** A later request for the same instance replaces it. */
  superseded: { pending: 'superseded', open: 'superseded' },
  /** The person who asked for it (or an owner of its org) withdrew it: POST /changes/:id/cancel. */
  cancelled: { pending: 'cancelled', open: 'cancelled' },
};

/** The next status, or undefined when the event does not move a change in `from`. */
export function nextChangeStatus(from: ChangeStatus, event: ChangeEvent): ChangeStatus | undefined {
  return CHANGE_TRANSITIONS[event][from];
}

/** Statuses in which a change may still reach the base branch through the service. */
export const IN_FLIGHT: ReadonlySet<ChangeStatus> = new Set(['pending', 'open']);

/** Statuses whose pull request (or batch branch) the withdrawal outbox takes the change out of. */
export const WITHDRAWN: ReadonlySet<ChangeStatus> = new Set(['superseded', 'cancelled']);
