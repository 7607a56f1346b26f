-- record_child_step --
-- Records the step that started a child workflow, fenced like record_step.
WITH owner AS (
    SELECT workflow_id FROM workflows
    WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s
    FOR SHARE
)
INSERT INTO steps (
    workflow_id, function_id, step_name, output_encoding, output, child_workflow_id, attempt,
    started_at)
SELECT owner.workflow_id, %(function_id)s, %(step_name)s, %(output_encoding)s, %(output)s,
       %(child_workflow_id)s, %(attempt)s, now()
FROM owner
ON CONFLICT (workflow_id, function_id) DO NOTHING
RETURNING *
