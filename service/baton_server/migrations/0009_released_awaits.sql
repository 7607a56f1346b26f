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
