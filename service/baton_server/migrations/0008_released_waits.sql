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
