-- insert_workflows --
-- Creates many ENQUEUED workflows with one statement, in request order (which
-- is their FIFO order on a queue); an item whose id or in-flight
-- deduplication id is taken is skipped and returns nothing. Wakes the
-- dispatchers of every replica at commit (see insert_workflow).
INSERT INTO workflows (
    workflow_id, workflow_name, status, input_encoding, input, queue, app_version,
    max_attempts, deduplication_id, priority, partition_key, start_at, queue_timeout,
    deadline, parent_workflow_id, trace_carrier)
SELECT i.workflow_id, i.workflow_name, 'ENQUEUED', i.input_encoding, i.input, i.queue,
       i.app_version, i.max_attempts, i.deduplication_id, i.priority, i.partition_key,
       i.start_at, i.queue_timeout * interval '1 second', i.deadline, i.parent_workflow_id,
       i.trace_carrier
FROM unnest(
    %(workflow_ids)b::text[], %(workflow_names)b::text[], %(input_encodings)b::text[],
    %(inputs)b::bytea[], %(queues)b::text[], %(app_versions)b::text[],
    %(max_attempts)b::integer[], %(deduplication_ids)b::text[], %(priorities)b::integer[],
    %(partition_keys)b::text[], %(start_ats)b::timestamptz[], %(queue_timeouts)b::float8[],
    %(deadlines)b::timestamptz[], %(parent_workflow_ids)b::text[], %(trace_carriers)b::jsonb[]
) WITH ORDINALITY AS i(
    workflow_id, workflow_name, input_encoding, input, queue, app_version, max_attempts,
    deduplication_id, priority, partition_key, start_at, queue_timeout, deadline,
    parent_workflow_id, trace_carrier, ord)
ORDER BY i.ord
ON CONFLICT DO NOTHING
RETURNING *, pg_notify('baton_enqueued', CASE WHEN queue = '' THEN workflow_name
                                               ELSE 'queue/' || queue END) IS NULL AS notified

-- insert_queued_dispatched --
-- A queued start taken at once (eager dispatch): on a queue without flow
-- control where no workflow due to start waits, the workflow is created
-- already dequeued and owned by a worker of this replica that serves the queue
-- (attempt 1, its queue deadline counted from now). Returns nothing when the
-- id or the deduplication id is taken, when a due workflow waits on the queue,
-- when the queue is missing or has flow control, or when it refuses the
-- item's priority or partition key (the caller then starts it the usual way,
-- which enqueues it behind those, FIFO and budgets holding, or says what is
-- wrong).
WITH t AS (SELECT clock_timestamp() AS now)
INSERT INTO workflows (
    workflow_id, workflow_name, status, input_encoding, input, queue, app_version,
    max_attempts, deduplication_id, priority, partition_key, queue_timeout,
    deadline, parent_workflow_id, trace_carrier, attempt, owner_worker_id,
    started_at, dequeued_at, queue_deadline)
SELECT %(workflow_id)s, %(workflow_name)s, 'PENDING', %(input_encoding)s, %(input)s, %(queue)s,
       %(app_version)s, %(max_attempts)s, %(deduplication_id)s, %(priority)s,
       %(partition_key)s, %(queue_timeout)s * interval '1 second', %(deadline)s,
       %(parent_workflow_id)s, %(trace_carrier)s, 1, %(owner_worker_id)s, t.now, t.now,
       t.now + coalesce(%(queue_timeout)s * interval '1 second', q.start_to_close_timeout)
FROM t, queues q
WHERE q.name = %(queue)s AND q.concurrency = 0 AND q.worker_concurrency = 0
  AND q.rate_limit = 0 AND NOT q.partitioned AND %(partition_key)s = ''
  AND (%(priority)s = 0 OR q.priority_enabled)
  AND NOT EXISTS (
      SELECT 1 FROM workflows w
      WHERE w.queue = %(queue)s AND w.status = 'ENQUEUED'
        AND (w.start_at IS NULL OR w.start_at <= t.now))
ON CONFLICT DO NOTHING
RETURNING *

-- deduplication_holders --
-- The in-flight workflows holding some (queue, deduplication id) pairs.
SELECT w.queue, w.deduplication_id, w.workflow_id
FROM workflows w
JOIN unnest(%(queues)b::text[], %(deduplication_ids)b::text[]) AS d(queue, deduplication_id)
  ON w.queue = d.queue AND w.deduplication_id = d.deduplication_id
WHERE w.status IN ('ENQUEUED', 'PENDING')
