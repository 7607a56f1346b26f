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
