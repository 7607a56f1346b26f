-- The whole schema as the migrations leave it (checked by tests/integration/test_migrations.py).
-- Edit it together with a new migration.

CREATE TABLE workflows (
    workflow_id        text PRIMARY KEY,
    workflow_name      text NOT NULL,
    status             text NOT NULL CHECK (status IN (
                           'ENQUEUED', 'PENDING', 'SUCCESS', 'ERROR', 'CANCELLED',
                           'MAX_RECOVERY_ATTEMPTS_EXCEEDED')),
    input_encoding     text,
    input              bytea,
    output_encoding    text,
    output             bytea,
    error              jsonb,
    queue              text NOT NULL DEFAULT '',
    app_version        text NOT NULL DEFAULT '',
    attempt            integer NOT NULL DEFAULT 0,
    max_attempts       integer NOT NULL DEFAULT 0,
    owner_worker_id    text,
    parent_workflow_id text,
    forked_from        text,
    deadline           timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz
);

-- Dispatch picks the oldest ENQUEUED workflows of the names a worker hosts.
CREATE INDEX workflows_enqueued_idx ON workflows (workflow_name, created_at)
    WHERE status = 'ENQUEUED';
-- The lease sweep looks at PENDING workflows by owner.
CREATE INDEX workflows_pending_owner_idx ON workflows (owner_worker_id)
    WHERE status = 'PENDING';
-- Listing is newest first, keyset-paginated on (created_at, workflow_id).
CREATE INDEX workflows_created_idx ON workflows (created_at, workflow_id);
CREATE INDEX workflows_parent_idx ON workflows (parent_workflow_id)
    WHERE parent_workflow_id IS NOT NULL;

-- The journal: one row per recorded step, keyed by the SDK's step number.
CREATE TABLE steps (
    workflow_id       text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    function_id       integer NOT NULL CHECK (function_id > 0),
    step_name         text NOT NULL,
    output_encoding   text,
    output            bytea,
    error             jsonb,
    child_workflow_id text,
    attempt           integer NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, function_id)
);

-- Connected workers and their leases. A replica renews the leases of all its
-- live workers with one UPDATE per interval; a PENDING workflow whose owner's
-- lease has expired is enqueued again.
CREATE TABLE workers (
    worker_id        text PRIMARY KEY,
    replica_id       text NOT NULL,
    app_version      text NOT NULL DEFAULT '',
    display_name     text NOT NULL DEFAULT '',
    sdk              text NOT NULL DEFAULT '',
    workflow_names   text[] NOT NULL DEFAULT '{}',
    step_names       text[] NOT NULL DEFAULT '{}',
    connected_at     timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL
);

-- ---- 0002_communication ----

-- Messages sent to a workflow (Send/Recv); FIFO per (destination, topic) by message_id.
-- A consumed message is kept (consumed_at) so its idempotency key stays taken.
CREATE TABLE messages (
    message_id       bigserial PRIMARY KEY,
    destination_id   text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    topic            text NOT NULL DEFAULT '',
    payload_encoding text,
    payload          bytea,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    consumed_at      timestamptz
);
CREATE INDEX messages_inbox_idx ON messages (destination_id, topic, message_id)
    WHERE consumed_at IS NULL;
CREATE UNIQUE INDEX messages_idempotency_idx ON messages (destination_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The latest value of each event of a workflow.
CREATE TABLE events (
    workflow_id    text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    key            text NOT NULL,
    value_encoding text,
    value          bytea,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, key)
);

-- Every value an event took, by the step that set it (forks copy those before their step).
CREATE TABLE event_history (
    workflow_id    text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    function_id    integer NOT NULL,
    key            text NOT NULL,
    value_encoding text,
    value          bytea,
    set_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, function_id)
);

-- A workflow's streams: the next offset to write, and whether it is closed.
CREATE TABLE streams (
    workflow_id text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    key         text NOT NULL,
    next_offset bigint NOT NULL DEFAULT 0,
    closed_at   timestamptz,
    PRIMARY KEY (workflow_id, key)
);

-- The values of a stream, in offset order. function_id is the writing step of
-- the workflow, NULL for a value written from inside a step (at least once).
CREATE TABLE stream_entries (
    workflow_id    text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    key            text NOT NULL,
    "offset"       bigint NOT NULL,
    value_encoding text,
    value          bytea,
    function_id    integer,
    written_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, key, "offset")
);

-- Deadlines of durable waits (sleep, recv and get_event timeouts), recorded the
-- first time a wait runs so that a recovered workflow keeps its original deadline.
CREATE TABLE wait_deadlines (
    workflow_id text NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
    function_id integer NOT NULL,
    deadline    timestamptz NOT NULL,
    PRIMARY KEY (workflow_id, function_id)
);

-- ---- 0003_remote_steps ----

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

-- ---- 0004_queues_schedules ----

-- A named queue's flow control. Claims of a queue with a global budget
-- (concurrency, rate limit, partitions) lock its row, so they are serialized.
CREATE TABLE queues (
    name                   text PRIMARY KEY,
    concurrency            integer NOT NULL DEFAULT 0 CHECK (concurrency >= 0),
    worker_concurrency     integer NOT NULL DEFAULT 0 CHECK (worker_concurrency >= 0),
    rate_limit             integer NOT NULL DEFAULT 0 CHECK (rate_limit >= 0),
    rate_period            interval,
    priority_enabled       boolean NOT NULL DEFAULT false,
    partitioned            boolean NOT NULL DEFAULT false,
    start_to_close_timeout interval,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Queue options of a workflow. queue_deadline is set when it is first dequeued
-- (dequeued_at + its queue timeout); enqueue_seq orders FIFO within a priority.
ALTER TABLE workflows ADD COLUMN deduplication_id text;
ALTER TABLE workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN partition_key text NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN start_at timestamptz;
ALTER TABLE workflows ADD COLUMN queue_timeout interval;
ALTER TABLE workflows ADD COLUMN dequeued_at timestamptz;
ALTER TABLE workflows ADD COLUMN queue_deadline timestamptz;
ALTER TABLE workflows ADD COLUMN enqueue_seq bigserial;

-- At most one workflow in flight per (queue, deduplication id).
CREATE UNIQUE INDEX workflows_dedup_idx ON workflows (queue, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');
-- Plain dispatch looks only at workflows started without a queue.
CREATE INDEX workflows_enqueued_plain_idx ON workflows (workflow_name, created_at)
    WHERE status = 'ENQUEUED' AND queue = '';
-- Queue dispatch picks a queue's waiting workflows in priority then FIFO order.
CREATE INDEX workflows_queue_waiting_idx ON workflows (queue, priority, enqueue_seq)
    WHERE status = 'ENQUEUED' AND queue <> '';
-- Concurrency budgets count a queue's running workflows (by partition, by worker).
CREATE INDEX workflows_queue_running_idx ON workflows (queue, partition_key)
    WHERE status = 'PENDING' AND queue <> '';
-- Rate limits count a queue's recent starts.
CREATE INDEX workflows_queue_dequeued_idx ON workflows (queue, dequeued_at)
    WHERE dequeued_at IS NOT NULL;
-- The timeout sweep looks for running queue workflows past their deadline.
CREATE INDEX workflows_queue_deadline_idx ON workflows (queue_deadline)
    WHERE queue_deadline IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');

-- Cron schedules. next_fire_at is the next tick to start; the replica that
-- fires it locks the row (SKIP LOCKED), and the tick's workflow id
-- `<name>-<tick>` makes a second start of the same tick a no-op.
CREATE TABLE schedules (
    name             text PRIMARY KEY,
    cron             text NOT NULL,
    time_zone        text NOT NULL DEFAULT '',
    workflow_name    text NOT NULL,
    queue            text NOT NULL DEFAULT '',
    context_encoding text,
    context          bytea,
    paused           boolean NOT NULL DEFAULT false,
    last_fired_at    timestamptz,
    next_fire_at     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE NOT paused;

-- ---- 0005_management ----

-- Resume gives a workflow a fresh budget of dispatches without lowering its
-- attempt number (which fences stale writers): the budget counts from here.
ALTER TABLE workflows ADD COLUMN attempts_base integer NOT NULL DEFAULT 0;

-- The deadline sweep looks for unfinished workflows whose deadline has passed.
CREATE INDEX workflows_deadline_idx ON workflows (deadline)
    WHERE deadline IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');
-- Retention deletes finished workflows by completion time; listing filters by it.
CREATE INDEX workflows_completed_idx ON workflows (completed_at)
    WHERE completed_at IS NOT NULL;

-- ---- 0007_tracing ----

-- The trace context a workflow was started in (W3C traceparent/tracestate),
-- handed to its worker so the workflow's spans join the caller's trace.
ALTER TABLE workflows ADD COLUMN trace_carrier jsonb;

-- ---- 0008_released_waits ----

-- Workflows released from their worker while they wait (a long sleep or recv).
-- A released workflow is ENQUEUED again with start_at (until now only a queue's
-- delayed start) set to the end of its wait, so dispatch leaves it alone until
-- then; a released recv also names the topic whose next message ends the wait
-- early (the empty string for messages sent without a topic).
ALTER TABLE workflows ADD COLUMN wait_topic text;

-- Plain dispatch takes released workflows whose wait has ended, by wake-up time
-- (the same index gives the next wake-up time), then the other waiting ones,
-- oldest first; neither index holds workflows still waiting out their wait.
DROP INDEX workflows_enqueued_plain_idx;
CREATE INDEX workflows_ready_plain_idx ON workflows (workflow_name, created_at)
    WHERE status = 'ENQUEUED' AND queue = '' AND start_at IS NULL;
CREATE INDEX workflows_released_idx ON workflows (start_at)
    WHERE status = 'ENQUEUED' AND queue = '' AND start_at IS NOT NULL;

-- ---- 0009_released_awaits ----

-- Workflows released from their worker while they await another workflow (a
-- child, usually). The released one names the awaited one in wait_workflow_id,
-- and the awaited one is marked `awaited`. When an awaited workflow reaches a
-- terminal status, a trigger ends the wait of every workflow released awaiting
-- it (start_at cleared: claimable at once) and wakes the dispatchers. Marking
-- `awaited` takes the awaited row's lock in the releasing transaction, so a
-- release and the end it waits for always see each other; workflows nobody
-- awaited never call the trigger. The trigger skips a waiting row locked by
-- another update (a cancel of the tree, a claim), which decides its fate
-- itself, so it never waits for a lock taken in the opposite order (parent
-- before child); a released workflow is claimed after an hour in any case.
ALTER TABLE workflows ADD COLUMN wait_workflow_id text;
ALTER TABLE workflows ADD COLUMN awaited boolean NOT NULL DEFAULT false;
CREATE INDEX workflows_awaiting_idx ON workflows (wait_workflow_id)
    WHERE wait_workflow_id IS NOT NULL;

CREATE FUNCTION baton_wake_awaiting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken text;
BEGIN
    FOR woken IN
        UPDATE workflows SET start_at = NULL, wait_workflow_id = NULL, updated_at = now()
        WHERE workflow_id IN (
            SELECT workflow_id FROM workflows
            WHERE wait_workflow_id = NEW.workflow_id AND status = 'ENQUEUED'
            FOR NO KEY UPDATE SKIP LOCKED)
        RETURNING workflow_name
    LOOP
        PERFORM pg_notify('baton_enqueued', woken);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_wake_awaiting AFTER UPDATE OF status ON workflows
    FOR EACH ROW
    WHEN (NEW.awaited AND NEW.status IN (
        'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))
    EXECUTE FUNCTION baton_wake_awaiting();

-- ---- 0010_released_event_reads ----

-- Workflows released from their worker while they read another workflow's
-- event (GetEvent from a workflow, still unset after a while). The released
-- one names that workflow in wait_workflow_id and the event's key in
-- wait_event_key; the SetEvent of that key ends its wait (start_at cleared:
-- claimable at once). SetEvent and the release take the same advisory lock on
-- the event's workflow, so one always sees the other. The end of an awaited
-- workflow wakes only those awaiting its end, not the readers of its events
-- (a reader waits for the value or its own deadline).
ALTER TABLE workflows ADD COLUMN wait_event_key text;

CREATE OR REPLACE FUNCTION baton_wake_awaiting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    woken text;
BEGIN
    FOR woken IN
        UPDATE workflows SET start_at = NULL, wait_workflow_id = NULL, updated_at = now()
        WHERE workflow_id IN (
            SELECT workflow_id FROM workflows
            WHERE wait_workflow_id = NEW.workflow_id AND wait_event_key IS NULL
              AND status = 'ENQUEUED'
            FOR NO KEY UPDATE SKIP LOCKED)
        RETURNING workflow_name
    LOOP
        PERFORM pg_notify('baton_enqueued', woken);
    END LOOP;
    RETURN NULL;
END
$$;
