-- upsert_event --
-- Sets an event's latest value.
INSERT INTO events (workflow_id, key, value_encoding, value)
VALUES (%(workflow_id)s, %(key)s, %(value_encoding)s, %(value)s)
ON CONFLICT (workflow_id, key) DO UPDATE
SET value_encoding = excluded.value_encoding, value = excluded.value, updated_at = now()

-- insert_event_history --
-- Keeps the value an event took at the workflow step that set it.
INSERT INTO event_history (workflow_id, function_id, key, value_encoding, value)
VALUES (%(workflow_id)s, %(function_id)s, %(key)s, %(value_encoding)s, %(value)s)
ON CONFLICT (workflow_id, function_id) DO NOTHING

-- get_event --
-- An event's latest value.
SELECT key, value_encoding, value, updated_at FROM events
WHERE workflow_id = %(workflow_id)s AND key = %(key)s

-- list_events --
-- All events of a workflow by key.
SELECT key, value_encoding, value, updated_at FROM events
WHERE workflow_id = %(workflow_id)s ORDER BY key

-- lock_events --
-- Serializes, per workflow, a SetEvent with a GetEvent releasing its reader
-- (until commit), so an event is never set unseen past a release: either the
-- release sees the value, or the set sees the release and ends it.
SELECT pg_advisory_xact_lock(1113018448, hashtext(%(workflow_id)s))

-- wake_released_readers --
-- Ends the wait of the workflows released while reading this event: claimable
-- at once, and every replica's dispatcher is woken.
UPDATE workflows SET start_at = NULL, wait_workflow_id = NULL, wait_event_key = NULL,
    updated_at = now()
WHERE wait_workflow_id = %(workflow_id)s AND wait_event_key = %(key)s AND status = 'ENQUEUED'
RETURNING pg_notify('baton_enqueued', workflow_name)
