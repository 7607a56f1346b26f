-- record_wait_deadline --
-- Records a durable wait's deadline the first time; later calls keep the first one.
INSERT INTO wait_deadlines (workflow_id, function_id, deadline)
VALUES (%(workflow_id)s, %(function_id)s, now() + %(duration)s)
ON CONFLICT (workflow_id, function_id) DO NOTHING

-- get_wait_deadline --
-- A recorded deadline and the seconds left until it.
SELECT deadline, greatest(0, extract(epoch FROM deadline - now()))::float8 AS remaining
FROM wait_deadlines WHERE workflow_id = %(workflow_id)s AND function_id = %(function_id)s

-- release_waiting_workflow --
-- Takes a waiting workflow from its worker: ENQUEUED again, not to be claimed
-- before %(wake_at)s (or, when %(wait_topic)s is not NULL, a message on that
-- topic; when %(wait_workflow_id)s is not NULL, the end of that workflow, or
-- with %(wait_event_key)s, the SetEvent of that key of that workflow), its
-- dispatch budget moved up by one so that the dispatch after the wait is not
-- counted as a recovery. Only the owner's attempt of a workflow started
-- without a queue; returns nothing otherwise.
UPDATE workflows
SET status = 'ENQUEUED', owner_worker_id = NULL, start_at = %(wake_at)s,
    wait_topic = %(wait_topic)s, wait_workflow_id = %(wait_workflow_id)s,
    wait_event_key = %(wait_event_key)s,
    attempts_base = attempts_base + 1, updated_at = now()
WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s
  AND queue = ''
RETURNING workflow_name

-- next_wake_up --
-- Seconds until the earliest released workflow's wait ends (NULL when none waits).
SELECT extract(epoch FROM min(start_at) - now())::float8 AS seconds FROM workflows
WHERE status = 'ENQUEUED' AND queue = '' AND start_at > now()

-- mark_awaited --
-- Marks a workflow as awaited by a released one (see the 0009 migration: its
-- end then wakes that one) and returns it as it is now. The update locks the
-- row until commit, so its end cannot slip by unseen between this read and
-- the release.
UPDATE workflows SET awaited = true WHERE workflow_id = %(workflow_id)s RETURNING *
