-- insert_workflow --
-- Creates an ENQUEUED workflow unless the id is taken; returns nothing when it is.
-- A created workflow wakes the dispatchers of every replica at commit, as
-- notify_enqueued does, without a statement of its own (Postgres delivers the
-- identical notifications of one transaction once).
INSERT INTO workflows (
    workflow_id, workflow_name, status, input_encoding, input, queue, app_version,
    max_attempts, parent_workflow_id, deadline, trace_carrier)
VALUES (
    %(workflow_id)s, %(workflow_name)s, 'ENQUEUED', %(input_encoding)s, %(input)s, %(queue)s,
    %(app_version)s, %(max_attempts)s, %(parent_workflow_id)s, %(deadline)s, %(trace_carrier)s)
ON CONFLICT (workflow_id) DO NOTHING
RETURNING *, pg_notify('baton_enqueued', CASE WHEN queue = '' THEN workflow_name
                                               ELSE 'queue/' || queue END) IS NULL AS notified

-- insert_workflow_dispatched --
-- Creates a workflow already dispatched (eager dispatch: a worker connected to
-- this replica hosts it and has a free slot), owned by that worker under
-- attempt 1, unless the id is taken; returns nothing when it is.
INSERT INTO workflows (
    workflow_id, workflow_name, status, input_encoding, input, queue, app_version,
    max_attempts, parent_workflow_id, deadline, trace_carrier, attempt, owner_worker_id,
    started_at)
VALUES (
    %(workflow_id)s, %(workflow_name)s, 'PENDING', %(input_encoding)s, %(input)s, %(queue)s,
    %(app_version)s, %(max_attempts)s, %(parent_workflow_id)s, %(deadline)s, %(trace_carrier)s,
    1, %(owner_worker_id)s, now())
ON CONFLICT (workflow_id) DO NOTHING
RETURNING *

-- get_workflow --
-- One workflow by id.
SELECT * FROM workflows WHERE workflow_id = %(workflow_id)s

-- get_workflows --
-- Several workflows by id.
SELECT * FROM workflows WHERE workflow_id = ANY(%(workflow_ids)b::text[])

-- existing_workflow_ids --
-- Which of several ids name a workflow (no row is loaded).
SELECT workflow_id FROM workflows WHERE workflow_id = ANY(%(workflow_ids)b::text[])

-- finished_workflows --
-- Those of several workflows that have finished, whole (running ones are not
-- loaded: inputs can be large).
SELECT * FROM workflows
WHERE workflow_id = ANY(%(workflow_ids)b::text[])
  AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')

-- lock_workflow --
-- One workflow by id, locked against other updates of it until commit.
SELECT * FROM workflows WHERE workflow_id = %(workflow_id)s FOR NO KEY UPDATE

-- notify_enqueued --
-- Wakes the dispatchers of every replica: workflows of this name wait.
SELECT pg_notify('baton_enqueued', %(workflow_name)s)

-- notify_status --
-- Wakes everyone awaiting or watching this workflow.
SELECT pg_notify('baton_status', %(workflow_id)s)

-- claim_workflows --
-- Takes up to %(limit)s ENQUEUED workflows whose name the worker hosts and whose
-- version it runs, making it their owner under a new attempt: first released
-- workflows whose wait has ended (by wake-up time), then the oldest of the
-- others. Released workflows still waiting are left alone. SKIP LOCKED lets
-- replicas claim side by side without waiting on each other.
-- Only workflows started without a queue: queued ones go through queues.sql.
-- Wakes the claimed workflows' watchers (`baton_status`) at commit.
WITH woken AS (
    SELECT workflow_id FROM workflows
    WHERE status = 'ENQUEUED' AND queue = '' AND start_at <= now()
      AND workflow_name = ANY(%(workflow_names)s)
      AND (app_version = '' OR app_version = %(app_version)s)
    ORDER BY start_at
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
),
fresh AS (
    SELECT workflow_id FROM workflows
    WHERE status = 'ENQUEUED' AND queue = '' AND start_at IS NULL
      AND workflow_name = ANY(%(workflow_names)s)
      AND (app_version = '' OR app_version = %(app_version)s)
    ORDER BY created_at, workflow_id
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
),
-- The CTEs run only as far as this reads them: fresh not at all when woken
-- fills the batch. (A computed LIMIT in fresh would make the planner scan the
-- created_at index past every released workflow.)
picked AS (
    SELECT workflow_id FROM woken UNION ALL SELECT workflow_id FROM fresh
    LIMIT %(limit)s
)
UPDATE workflows w
SET status = 'PENDING',
    attempt = w.attempt + 1,
    owner_worker_id = %(worker_id)s,
    started_at = coalesce(w.started_at, now()),
    start_at = NULL,
    wait_topic = NULL,
    wait_workflow_id = NULL,
    wait_event_key = NULL,
    updated_at = now()
FROM picked
WHERE w.workflow_id = picked.workflow_id
RETURNING w.*, pg_notify('baton_status', w.workflow_id) IS NULL AS notified

-- release_workflow --
-- Gives a claimed (or eagerly dispatched) workflow back: its dispatch could not
-- be delivered. It waits again, so every replica's dispatcher is woken at
-- commit, not only this one's.
UPDATE workflows
SET status = 'ENQUEUED', owner_worker_id = NULL, updated_at = now()
WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s
RETURNING pg_notify('baton_enqueued', CASE WHEN queue = '' THEN workflow_name
                                           ELSE 'queue/' || queue END) IS NULL AS notified

-- exceed_max_attempts --
-- Stops a workflow dispatched more often than it may be (a dead letter).
UPDATE workflows
SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', owner_worker_id = NULL, error = %(error)s,
    completed_at = now(), updated_at = now()
WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s

-- release_expired_leases --
-- Enqueues again every PENDING workflow whose owner's lease has expired (or
-- whose owner is gone). Locked rows are skipped: another replica is on them.
WITH expired AS (
    SELECT w.workflow_id FROM workflows w
    WHERE w.status = 'PENDING'
      AND NOT EXISTS (
          SELECT 1 FROM workers k
          WHERE k.worker_id = w.owner_worker_id AND k.lease_expires_at > now())
    LIMIT 1000
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE workflows w
SET status = 'ENQUEUED', owner_worker_id = NULL, updated_at = now()
FROM expired
WHERE w.workflow_id = expired.workflow_id
RETURNING w.workflow_id, w.workflow_name

-- hosting_worker_exists --
-- Whether a live worker hosts this workflow name (for the given pinned version).
SELECT EXISTS (
    SELECT 1 FROM workers
    WHERE lease_expires_at > now()
      AND %(workflow_name)s = ANY(workflow_names)
      AND (%(app_version)s = '' OR app_version = %(app_version)s)
) AS hosted

-- list_workflows_newest --
-- A page of workflows, newest first, after the keyset cursor.
SELECT * FROM workflows
WHERE (%(statuses)b::text[] IS NULL OR status = ANY(%(statuses)b::text[]))
  AND (%(workflow_name)s::text IS NULL OR workflow_name = %(workflow_name)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(app_version)s::text IS NULL OR app_version = %(app_version)s::text)
  AND (%(parent_workflow_id)s::text IS NULL OR parent_workflow_id = %(parent_workflow_id)s::text)
  AND (%(id_prefix)s::text IS NULL OR starts_with(workflow_id, %(id_prefix)s::text))
  AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
  AND (%(completed_after)s::timestamptz IS NULL OR completed_at >= %(completed_after)s::timestamptz)
  AND (%(completed_before)s::timestamptz IS NULL OR completed_at < %(completed_before)s::timestamptz)
  AND (%(cursor_created_at)s::timestamptz IS NULL
       OR (created_at, workflow_id) < (%(cursor_created_at)s::timestamptz, %(cursor_id)s::text))
ORDER BY created_at DESC, workflow_id DESC
LIMIT %(limit)s

-- list_workflows_oldest --
-- A page of workflows, oldest first, after the keyset cursor.
SELECT * FROM workflows
WHERE (%(statuses)b::text[] IS NULL OR status = ANY(%(statuses)b::text[]))
  AND (%(workflow_name)s::text IS NULL OR workflow_name = %(workflow_name)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(app_version)s::text IS NULL OR app_version = %(app_version)s::text)
  AND (%(parent_workflow_id)s::text IS NULL OR parent_workflow_id = %(parent_workflow_id)s::text)
  AND (%(id_prefix)s::text IS NULL OR starts_with(workflow_id, %(id_prefix)s::text))
  AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
  AND (%(completed_after)s::timestamptz IS NULL OR completed_at >= %(completed_after)s::timestamptz)
  AND (%(completed_before)s::timestamptz IS NULL OR completed_at < %(completed_before)s::timestamptz)
  AND (%(cursor_created_at)s::timestamptz IS NULL
       OR (created_at, workflow_id) > (%(cursor_created_at)s::timestamptz, %(cursor_id)s::text))
ORDER BY created_at, workflow_id
LIMIT %(limit)s

-- notify_statuses --
-- Wakes the awaiters of several workflows at once.
SELECT pg_notify('baton_status', workflow_id) FROM unnest(%(workflow_ids)b::text[]) AS workflow_id

-- release_not_running --
-- Enqueues again the PENDING workflows owned by a (re)registering worker that it
-- does not report running under that attempt: their dispatch never reached it.
UPDATE workflows
SET status = 'ENQUEUED', owner_worker_id = NULL, updated_at = now()
WHERE status = 'PENDING'
  AND owner_worker_id = %(worker_id)s
  AND (workflow_id, attempt) NOT IN (
      SELECT * FROM unnest(%(running_ids)b::text[], %(running_attempts)b::integer[]))
RETURNING workflow_id, workflow_name

-- complete_workflows --
-- Finishes several workflows at once (group commit), each only for its owner's
-- current attempt, and wakes their awaiters (`baton_status`) and, for one on a
-- queue, the dispatchers (its place is free) at commit, without statements of
-- their own. Returns those finished; a missing one was stale, not PENDING, or
-- finished before, or one whose `follows` step (when not 0) is not recorded
-- (the caller reads the workflow to tell which).
UPDATE workflows w
SET status = c.status, output_encoding = c.output_encoding, output = c.output,
    error = c.error, owner_worker_id = NULL, completed_at = now(), updated_at = now()
FROM unnest(
    %(workflow_ids)b::text[], %(attempts)b::integer[], %(statuses)b::text[],
    %(output_encodings)b::text[], %(outputs)b::bytea[], %(errors)b::jsonb[],
    %(follows)b::integer[])
    AS c (workflow_id, attempt, status, output_encoding, output, error, follows)
WHERE w.workflow_id = c.workflow_id AND w.status = 'PENDING' AND w.attempt = c.attempt
  AND (c.follows = 0 OR EXISTS (
      SELECT 1 FROM steps s WHERE s.workflow_id = c.workflow_id AND s.function_id = c.follows))
RETURNING w.*,
    pg_notify('baton_status', w.workflow_id) IS NULL AS notified,
    CASE WHEN w.queue <> '' THEN pg_notify('baton_enqueued', 'queue/' || w.queue) IS NULL END
        AS freed

-- complete_workflow --
-- complete_workflows for one workflow (the committer's batch of one): no
-- arrays to build or unpack, and a plan that reads the one row.
UPDATE workflows w
SET status = %(status)s, output_encoding = %(output_encoding)s, output = %(output)s,
    error = %(error)s, owner_worker_id = NULL, completed_at = now(), updated_at = now()
WHERE w.workflow_id = %(workflow_id)s AND w.status = 'PENDING' AND w.attempt = %(attempt)s
  AND (%(follows)s::integer = 0 OR EXISTS (
      SELECT 1 FROM steps s
      WHERE s.workflow_id = %(workflow_id)s AND s.function_id = %(follows)s::integer))
RETURNING w.*,
    pg_notify('baton_status', w.workflow_id) IS NULL AS notified,
    CASE WHEN w.queue <> '' THEN pg_notify('baton_enqueued', 'queue/' || w.queue) IS NULL END
        AS freed

-- complete_workflow_after_step --
-- A workflow's last step and its completion in one statement and one commit
-- (the committer's batch of exactly those two, which a worker sends together):
-- the step is appended as record_step appends it, and the workflow finishes as
-- complete_workflow finishes it, only if that step was written now. Returns
-- nothing when either was not written (a stale attempt, a workflow no longer
-- PENDING, the step recorded before): the caller then handles each alone,
-- which explains the outcome. The parameters are record_step's, named step_*,
-- and complete_workflow's result (status, output_encoding, output, error).
-- The row is locked FOR NO KEY UPDATE from the start, as the UPDATE needs it:
-- a share lock upgraded later could deadlock with a concurrent record_step of
-- the same step (a retry by the unary call), which now waits for this commit.
WITH owner AS (
    SELECT workflow_id FROM workflows
    WHERE workflow_id = %(step_workflow_id)s AND status = 'PENDING'
      AND attempt = %(step_attempt)s
    FOR NO KEY UPDATE
), recorded AS (
    INSERT INTO steps (
        workflow_id, function_id, step_name, output_encoding, output, error, attempt, started_at)
    SELECT owner.workflow_id, %(step_function_id)s, %(step_step_name)s,
           %(step_output_encoding)s, %(step_output)s, %(step_error)s, %(step_attempt)s,
           %(step_started_at)s
    FROM owner
    ON CONFLICT (workflow_id, function_id) DO NOTHING
    RETURNING workflow_id, attempt, completed_at
)
UPDATE workflows w
SET status = %(status)s, output_encoding = %(output_encoding)s, output = %(output)s,
    error = %(error)s, owner_worker_id = NULL, completed_at = now(), updated_at = now()
FROM recorded
WHERE w.workflow_id = recorded.workflow_id AND w.status = 'PENDING'
  AND w.attempt = recorded.attempt
RETURNING w.*, recorded.completed_at AS step_completed_at,
    pg_notify('baton_status', w.workflow_id) IS NULL AS notified,
    CASE WHEN w.queue <> '' THEN pg_notify('baton_enqueued', 'queue/' || w.queue) IS NULL END
        AS freed
