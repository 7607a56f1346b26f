-- cancel_workflows --
-- Cancels the unfinished workflows among the ids given (and, with include_children, among their descendants); returns each with the worker that ran it.
-- FOR NO KEY UPDATE (the UPDATE's own lock) lets a foreign key's KEY SHARE
-- through: a child whose Send inserts into its parent's inbox, holding its own
-- row, does not wait on the parent while the cancel waits on the child.
WITH RECURSIVE tree AS (
    SELECT workflow_id FROM workflows WHERE workflow_id = ANY(%(workflow_ids)b::text[])
    UNION
    SELECT w.workflow_id FROM workflows w JOIN tree ON w.parent_workflow_id = tree.workflow_id
    WHERE %(include_children)s::boolean
),
target AS (
    SELECT w.workflow_id, w.owner_worker_id FROM workflows w JOIN tree USING (workflow_id)
    WHERE w.status IN ('ENQUEUED', 'PENDING')
    FOR NO KEY UPDATE OF w
)
UPDATE workflows w
SET status = 'CANCELLED', error = %(error)s, owner_worker_id = NULL,
    completed_at = now(), updated_at = now()
FROM target
WHERE w.workflow_id = target.workflow_id
RETURNING w.workflow_id, w.workflow_name, target.owner_worker_id

-- notify_cancel --
-- Tells whichever replica holds each worker's stream to push a cancel to it.
SELECT pg_notify('baton_cancel', json_build_object('worker_id', owner, 'workflow_id', wid)::text)
FROM unnest(%(workflow_ids)b::text[], %(worker_ids)b::text[]) AS t (wid, owner)

-- expire_deadlines --
-- Takes up to %(limit)s unfinished workflows whose deadline has passed; locked rows are another replica's.
SELECT workflow_id FROM workflows
WHERE status IN ('ENQUEUED', 'PENDING') AND deadline <= now()
ORDER BY deadline
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED

-- next_deadline --
-- Seconds until the nearest deadline of an unfinished workflow (NULL when none).
SELECT extract(epoch FROM min(deadline) - now())::float8 AS seconds FROM workflows
WHERE deadline IS NOT NULL AND status IN ('ENQUEUED', 'PENDING')

-- resume_workflow --
-- Enqueues a CANCELLED or dead-lettered workflow again with a fresh attempt budget.
-- One cancelled while released in a wait is claimable at once: what it waited
-- for may have come meanwhile, and its replay waits again if not (a wait's
-- deadline is recorded). A queue's delayed start stays.
UPDATE workflows
SET status = 'ENQUEUED', attempts_base = attempt, error = NULL, owner_worker_id = NULL,
    completed_at = NULL, deadline = NULL, updated_at = now(),
    start_at = CASE WHEN queue = '' THEN NULL ELSE start_at END,
    wait_topic = NULL, wait_workflow_id = NULL, wait_event_key = NULL,
    app_version = coalesce(%(app_version)s, app_version)
WHERE workflow_id = %(workflow_id)s AND status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
RETURNING *

-- insert_fork --
-- Creates the fork of a workflow (same name and input, no parent) unless the id is taken.
INSERT INTO workflows (
    workflow_id, workflow_name, status, input_encoding, input, app_version, max_attempts,
    forked_from)
SELECT %(new_workflow_id)s, workflow_name, 'ENQUEUED', input_encoding, input,
       coalesce(%(app_version)s, app_version), max_attempts, workflow_id
FROM workflows WHERE workflow_id = %(workflow_id)s
ON CONFLICT (workflow_id) DO NOTHING
RETURNING *

-- copy_fork_steps --
-- Copies the original's journal before %(start_step)s into the fork.
INSERT INTO steps (
    workflow_id, function_id, step_name, output_encoding, output, error, child_workflow_id,
    attempt, started_at, completed_at)
SELECT %(new_workflow_id)s, function_id, step_name, output_encoding, output, error,
       child_workflow_id, attempt, started_at, completed_at
FROM steps WHERE workflow_id = %(workflow_id)s AND function_id < %(start_step)s

-- copy_fork_events --
-- Copies the event values set by the original's steps before %(start_step)s, and their latest values.
WITH history AS (
    INSERT INTO event_history (workflow_id, function_id, key, value_encoding, value, set_at)
    SELECT %(new_workflow_id)s, function_id, key, value_encoding, value, set_at
    FROM event_history WHERE workflow_id = %(workflow_id)s AND function_id < %(start_step)s
    RETURNING *
)
INSERT INTO events (workflow_id, key, value_encoding, value, updated_at)
SELECT DISTINCT ON (key) workflow_id, key, value_encoding, value, set_at
FROM history ORDER BY key, function_id DESC

-- copy_fork_streams --
-- Copies the stream values written before %(start_step)s (by those steps, or from inside steps before the cutoff), renumbered from 0, with each stream's next offset and its closing if it came before the cutoff.
WITH picked AS (
    SELECT key, "offset", value_encoding, value, function_id, written_at,
           row_number() OVER (PARTITION BY key ORDER BY "offset") - 1 AS new_offset
    FROM stream_entries
    WHERE workflow_id = %(workflow_id)s
      AND (function_id < %(start_step)s
           OR (function_id IS NULL AND written_at <= %(cutoff)s::timestamptz))
),
entries AS (
    INSERT INTO stream_entries (
        workflow_id, key, "offset", value_encoding, value, function_id, written_at)
    SELECT %(new_workflow_id)s, key, new_offset, value_encoding, value, function_id, written_at
    FROM picked
    RETURNING key
)
INSERT INTO streams (workflow_id, key, next_offset, closed_at)
SELECT %(new_workflow_id)s, s.key, coalesce(c.n, 0),
       CASE WHEN s.closed_at <= %(cutoff)s::timestamptz THEN s.closed_at END
FROM streams s
LEFT JOIN (SELECT key, count(*) AS n FROM entries GROUP BY key) c ON c.key = s.key
WHERE s.workflow_id = %(workflow_id)s
  AND (c.n IS NOT NULL OR s.closed_at <= %(cutoff)s::timestamptz)

-- fork_cutoff --
-- When the last step the fork keeps was recorded (NULL when it keeps none).
SELECT max(completed_at) AS cutoff FROM steps
WHERE workflow_id = %(workflow_id)s AND function_id < %(start_step)s

-- workflow_tree --
-- A workflow and (with include_children) all its descendants, locked, with their statuses.
WITH RECURSIVE tree AS (
    SELECT workflow_id FROM workflows WHERE workflow_id = %(workflow_id)s
    UNION
    SELECT w.workflow_id FROM workflows w JOIN tree ON w.parent_workflow_id = tree.workflow_id
    WHERE %(include_children)s::boolean
)
SELECT w.workflow_id, w.status FROM workflows w JOIN tree USING (workflow_id)
ORDER BY w.workflow_id
FOR UPDATE OF w

-- delete_finished --
-- Deletes those of the ids given that are finished, with their rows (foreign keys cascade).
DELETE FROM workflows
WHERE workflow_id = ANY(%(workflow_ids)b::text[])
  AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')

-- delete_expired --
-- Deletes up to %(limit)s workflows finished before now() - %(age)s; locked rows are skipped, so replicas share the work.
DELETE FROM workflows
WHERE workflow_id IN (
    SELECT workflow_id FROM workflows
    WHERE completed_at < now() - %(age)s::interval
      AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)

-- hosting_versions --
-- The app versions of the live workers hosting this workflow name.
SELECT DISTINCT app_version FROM workers
WHERE lease_expires_at > now() AND %(workflow_name)s = ANY(workflow_names)
ORDER BY app_version
