import { QueryTypes, type Sequelize } from 'sequelize';
import type { StateCounts } from '../metrics.ts';
import { CHANGE_KINDS } from './changes/change-kinds.ts';
import type { ChangeStatus } from './changes/change-status.ts';
import { INSTANCE_STATES } from './instance-state.ts';

/** The change statuses operators watch; merged and closed only grow, and are left out. */
export const WATCHED_CHANGE_STATUSES = ['pending', 'open', 'failed', 'superseded'] as const satisfies readonly ChangeStatus[];

interface CountRow {
  series: 'change' | 'instance' | 'drift' | 'unknown_path' | 'oldest_pending' | 'past_deadline';
  label: string | null;
  status: string | null;
  n: number | null;
}

/**
 * The counts behind the state gauges, in one round trip: changes by kind and status, instances
 * by state, drifted instances, unresolved unknown tenant paths, and the oldest pending change's
 * age (from the partial index change_requests_pending). Every label combination is returned,
 * zeros included, so a series never vanishes when its count drops to nothing.
 */
export async function readStateCounts(sequelize: Sequelize): Promise<StateCounts> {
  const rows = await sequelize.query<CountRow>(
    `SELECT 'change' AS series, kind::text AS label, status::text AS status, count(*)::float8 AS n
       FROM change_requests WHERE status IN (:statuses) GROUP BY kind, status
     UNION ALL SELECT 'instance', state::text, NULL, count(*)::float8 FROM instances GROUP BY state
     UNION ALL SELECT 'drift', NULL, NULL, count(*)::float8 FROM instances WHERE drift IS NOT NULL
     UNION ALL SELECT 'past_deadline', NULL, NULL, count(*)::float8 FROM instances i JOIN change_requests c ON c.id = i.last_change_id
        WHERE i.state IN ('syncing', 'updating') AND i.progress_deadline_exceeded_at >= c.updated_at
     UNION ALL SELECT 'unknown_path', NULL, NULL, count(*)::float8 FROM unknown_tenant_paths WHERE resolved_at IS NULL
     UNION ALL SELECT 'oldest_pending', NULL, NULL, extract(epoch FROM now() - min(created_at))::float8 FROM change_requests WHERE status = 'pending'`,
    { type: QueryTypes.SELECT, replacements: { statuses: WATCHED_CHANGE_STATUSES } },
  );
  const count = (series: CountRow['series'], label?: string, status?: string) =>
    rows.find((row) => row.series === series && (label === undefined || row.label === label) && (status === undefined || row.status === status))?.n ?? 0;
  return {
    changes: CHANGE_KINDS.flatMap((kind) => WATCHED_CHANGE_STATUSES.map((status) => ({ kind, status, count: count('change', kind, status) }))),
    instances: INSTANCE_STATES.map((state) => ({ state, count: count('instance', state) })),
    drifted: count('drift'),
    pastProgressDeadline: count('past_deadline'),
    unknownTenantPaths: count('unknown_path'),
    oldestPendingAgeSeconds: Math.max(0, count('oldest_pending')),
  };
}
