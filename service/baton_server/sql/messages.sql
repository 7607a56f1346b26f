-- insert_message --
-- Queues a message for an existing workflow; nothing when the idempotency key was used before.
INSERT INTO messages (destination_id, topic, payload_encoding, payload, idempotency_key)
SELECT workflow_id, %(topic)s, %(payload_encoding)s, %(payload)s, %(idempotency_key)s
FROM workflows WHERE workflow_id = %(destination_id)s
ON CONFLICT (destination_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING message_id

-- take_message --
-- Locks the oldest unconsumed message of (workflow, topic); SKIP LOCKED leaves it to a racing reader.
SELECT message_id, payload_encoding, payload FROM messages
WHERE destination_id = %(destination_id)s AND topic = %(topic)s AND consumed_at IS NULL
ORDER BY message_id
LIMIT 1
FOR UPDATE SKIP LOCKED

-- consume_message --
-- Marks a locked message consumed (in the transaction that records the Recv step).
UPDATE messages SET consumed_at = now() WHERE message_id = %(message_id)s

-- notify_comms --
-- Wakes whoever waits on this workflow's messages, events or streams (a hint).
SELECT pg_notify('baton_comms', %(workflow_id)s)

-- lock_inbox --
-- Serializes, per destination, a Send with a Recv releasing its workflow
-- (until commit), so a message is never sent unseen past a release: either the
-- release sees the message, or the send sees the release and ends it.
SELECT pg_advisory_xact_lock(1113018447, hashtext(%(workflow_id)s))

-- wake_released_recv --
-- Ends the wait of a workflow released in a recv on %(topic)s: claimable at
-- once, and every replica's dispatcher is woken.
UPDATE workflows SET start_at = NULL, wait_topic = NULL, updated_at = now()
WHERE workflow_id = %(workflow_id)s AND status = 'ENQUEUED' AND wait_topic = %(topic)s
RETURNING pg_notify('baton_enqueued', workflow_name)
