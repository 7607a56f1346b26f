-- record_step --
-- Appends a step to the journal if the caller still owns the workflow under
-- this attempt (FOR SHARE holds off a concurrent re-dispatch until commit).
-- Returns its commit time (the rest is what was sent), or nothing when the
-- caller is stale or the step is already recorded.
WITH owner AS (
    SELECT workflow_id FROM workflows
    WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s
    FOR SHARE
)
INSERT INTO steps (
    workflow_id, function_id, step_name, output_encoding, output, error, attempt, started_at)
SELECT owner.workflow_id, %(function_id)s, %(step_name)s, %(output_encoding)s, %(output)s,
       %(error)s, %(attempt)s, %(started_at)s
FROM owner
ON CONFLICT (workflow_id, function_id) DO NOTHING
RETURNING completed_at

-- get_step --
-- One recorded step.
SELECT * FROM steps WHERE workflow_id = %(workflow_id)s AND function_id = %(function_id)s

-- list_steps --
-- A page of a workflow's journal in step order, after %(after)s.
SELECT * FROM steps
WHERE workflow_id = %(workflow_id)s AND function_id > %(after)s
ORDER BY function_id
LIMIT %(limit)s

-- journals --
-- The journals of several workflows at once (sent with their dispatch).
SELECT * FROM steps WHERE workflow_id = ANY(%(workflow_ids)s) ORDER BY workflow_id, function_id

-- record_steps --
-- Appends several steps at once (group commit), each only if its caller still
-- owns the workflow under its attempt (FOR SHARE, as record_step). Returns the
-- key, attempt and commit time of each step written; a missing one is stale or was
-- recorded before (record_step tells which).
WITH new AS (
    SELECT * FROM unnest(
        %(workflow_ids)b::text[], %(function_ids)b::integer[], %(step_names)b::text[],
        %(output_encodings)b::text[], %(outputs)b::bytea[], %(errors)b::jsonb[],
        %(attempts)b::integer[], %(started_ats)b::timestamptz[])
        AS n (workflow_id, function_id, step_name, output_encoding, output, error, attempt,
              started_at)
), owner AS (
    SELECT workflow_id, attempt FROM workflows
    WHERE workflow_id = ANY(%(workflow_ids)b::text[]) AND status = 'PENDING'
    FOR SHARE
)
INSERT INTO steps (
    workflow_id, function_id, step_name, output_encoding, output, error, attempt, started_at)
SELECT new.workflow_id, new.function_id, new.step_name, new.output_encoding, new.output,
       new.error, new.attempt, new.started_at
FROM new JOIN owner ON owner.workflow_id = new.workflow_id AND owner.attempt = new.attempt
ON CONFLICT (workflow_id, function_id) DO NOTHING
RETURNING workflow_id, function_id, attempt, completed_at
