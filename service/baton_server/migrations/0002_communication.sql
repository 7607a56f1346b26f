-- Messages, events, streams, and the deadlines of durable waits.

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
