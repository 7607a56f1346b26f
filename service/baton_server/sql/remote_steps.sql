-- upsert_remote_step --
-- Creates the task of a remote step call, or points an existing one at the caller's current attempt.
INSERT INTO remote_step_tasks (
    task_id, workflow_id, function_id, attempt, step_name, input_encoding, input)
VALUES (
    %(task_id)s, %(workflow_id)s, %(function_id)s, %(attempt)s, %(step_name)s,
    %(input_encoding)s, %(input)s)
ON CONFLICT (workflow_id, function_id) DO UPDATE
SET attempt = greatest(remote_step_tasks.attempt, excluded.attempt)

-- notify_remote_step --
-- Wakes every replica's remote-step router: a step of this name waits for a worker.
SELECT pg_notify('baton_steps', %(step_name)s)

-- claim_remote_steps --
-- Takes up to %(limit)s waiting tasks of the steps a worker hosts, for that worker.
WITH picked AS (
    SELECT task_id FROM remote_step_tasks
    WHERE status = 'WAITING' AND step_name = ANY(%(step_names)s)
    ORDER BY created_at, task_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE remote_step_tasks t
SET status = 'RUNNING', worker_id = %(worker_id)s, runs = t.runs + 1
FROM picked
WHERE t.task_id = picked.task_id
RETURNING t.*

-- release_remote_step --
-- Puts a task back to WAITING (its worker went away, or its result could not be recorded).
UPDATE remote_step_tasks SET status = 'WAITING', worker_id = NULL
WHERE task_id = %(task_id)s

-- release_remote_steps_not_running --
-- Puts back to WAITING the tasks pushed to a (re)registering worker that it
-- does not report running: the push never reached it.
UPDATE remote_step_tasks SET status = 'WAITING', worker_id = NULL
WHERE status = 'RUNNING' AND worker_id = %(worker_id)s AND NOT (task_id = ANY(%(running)s))
RETURNING task_id

-- release_lost_remote_steps --
-- Puts back to WAITING the running tasks whose worker's lease has expired.
UPDATE remote_step_tasks t SET status = 'WAITING', worker_id = NULL
WHERE t.status = 'RUNNING'
  AND NOT EXISTS (
      SELECT 1 FROM workers k WHERE k.worker_id = t.worker_id AND k.lease_expires_at > now())
RETURNING t.step_name

-- take_remote_step --
-- Locks a task for its completion.
SELECT * FROM remote_step_tasks WHERE task_id = %(task_id)s FOR UPDATE

-- delete_remote_step --
-- Forgets a task whose result is recorded.
DELETE FROM remote_step_tasks WHERE task_id = %(task_id)s
