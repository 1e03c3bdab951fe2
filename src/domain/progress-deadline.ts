import { QueryTypes, type Sequelize } from 'sequelize';

/**
 * Argo CD has no sync timeout of its own (argo-cd#6055): a workload that never turns healthy
 * (an image that cannot be pulled, a PVC that never binds) keeps an instance `syncing` for ever.
 * Marks, once per change, the instances whose latest change merged longer ago than their
 * deadline (the offering version's progressDeadlineSeconds, else `defaultSeconds`) and that are
 * still `syncing` or `updating`, with an instance event; their Ready condition then says
 * ProgressDeadlineExceeded. Nothing else moves: the instance may still turn ready later. One
 * statement; rows another replica holds are skipped. Returns the instances marked.
 */
export async function markPastProgressDeadline(sequelize: Sequelize, defaultSeconds: number): Promise<string[]> {
  const rows = await sequelize.query<{ id: string }>(
    `WITH late AS (
       SELECT i.id, i.state, c.id AS change_id, c.updated_at AS merged_at, coalesce(v.progress_deadline_seconds, $default) AS deadline
         FROM instances i JOIN change_requests c ON c.id = i.last_change_id JOIN offering_versions v ON v.id = i.offering_version_id
        WHERE i.state IN ('syncing', 'updating') AND c.status = 'merged'
          AND (i.progress_deadline_exceeded_at IS NULL OR i.progress_deadline_exceeded_at < c.updated_at)
          AND c.updated_at + make_interval(secs => coalesce(v.progress_deadline_seconds, $default)) < now()
        FOR UPDATE OF i SKIP LOCKED
     ), marked AS (
       UPDATE instances i SET progress_deadline_exceeded_at = now() FROM late WHERE i.id = late.id RETURNING i.id
     ), recorded AS (
       INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, change_id, detail)
       SELECT late.id, late.state, late.state, 'progress.deadline-exceeded', 'control-plane', late.change_id,
              jsonb_build_object('deadlineSeconds', late.deadline, 'mergedAt', late.merged_at)
         FROM late JOIN marked ON marked.id = late.id
     )
     SELECT id FROM marked`,
    { type: QueryTypes.SELECT, bind: { default: defaultSeconds } },
  );
  return rows.map((r) => r.id);
}
