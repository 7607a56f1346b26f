-- Queues with flow control, and cron schedules.

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
