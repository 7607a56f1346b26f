-- Remote steps: a step called by name from a workflow and run by whichever
-- connected worker hosts it. A task lives until its result is recorded in the
-- caller's journal; a task whose worker is lost goes back to WAITING.
CREATE TABLE remote_step_tasks (
    task_id        text PRIMARY KEY,
    workflow_id    text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    function_id    integer NOT NULL,
    attempt        integer NOT NULL,
    step_name      text NOT NULL,
    input_encoding text,
    input          bytea,
    status         text NOT NULL DEFAULT 'WAITING' CHECK (status IN ('WAITING', 'RUNNING')),
    worker_id      text,
    runs           integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, function_id)
);
CREATE INDEX remote_step_tasks_waiting_idx ON remote_step_tasks (step_name, created_at)
    WHERE status = 'WAITING';
