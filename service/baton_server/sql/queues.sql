-- upsert_queue --
-- Creates a queue or replaces its configuration; returns it with its counts.
WITH stored AS (
    INSERT INTO queues (
        name, concurrency, worker_concurrency, rate_limit, rate_period, priority_enabled,
        partitioned, start_to_close_timeout)
    VALUES (
        %(name)s, %(concurrency)s, %(worker_concurrency)s, %(rate_limit)s, %(rate_period)s,
        %(priority_enabled)s, %(partitioned)s, %(start_to_close_timeout)s)
    ON CONFLICT (name) DO UPDATE
    SET concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency,
        rate_limit = excluded.rate_limit, rate_period = excluded.rate_period,
        priority_enabled = excluded.priority_enabled, partitioned = excluded.partitioned,
        start_to_close_timeout = excluded.start_to_close_timeout, updated_at = now()
    RETURNING *
)
SELECT stored.*,
       (SELECT count(*) FROM workflows w
        WHERE w.queue = stored.name AND w.status = 'ENQUEUED') AS depth,
       (SELECT count(*) FROM workflows w
        WHERE w.queue = stored.name AND w.status = 'PENDING') AS running
FROM stored

-- get_queue_stats --
-- A queue's configuration with its depth (ENQUEUED) and running (PENDING) counts.
SELECT q.*,
       (SELECT count(*) FROM workflows w WHERE w.queue = q.name AND w.status = 'ENQUEUED') AS depth,
       (SELECT count(*) FROM workflows w WHERE w.queue = q.name AND w.status = 'PENDING') AS running
FROM queues q WHERE q.name = %(name)s

-- list_queue_stats --
-- A page of queues by name after %(after)s, with their counts.
SELECT q.*,
       (SELECT count(*) FROM workflows w WHERE w.queue = q.name AND w.status = 'ENQUEUED') AS depth,
       (SELECT count(*) FROM workflows w WHERE w.queue = q.name AND w.status = 'PENDING') AS running
FROM queues q WHERE q.name > %(after)s
ORDER BY q.name
LIMIT %(limit)s

-- delete_queue --
-- Deletes a queue unless workflows wait on it or run from it.
DELETE FROM queues q
WHERE q.name = %(name)s
  AND NOT EXISTS (
      SELECT 1 FROM workflows w
      WHERE w.queue = q.name AND w.status IN ('ENQUEUED', 'PENDING'))
RETURNING q.name

-- declare_queues --
-- Creates, with no limits, the queues a worker serves that do not exist yet.
INSERT INTO queues (name) SELECT unnest(%(names)b::text[])
ON CONFLICT (name) DO NOTHING

-- get_queues --
-- The configurations of several queues.
SELECT * FROM queues WHERE name = ANY(%(names)b::text[])

-- lock_queue --
-- Locks a queue's row for this claim transaction: claims of it are serialized.
SELECT * FROM queues WHERE name = %(name)s FOR UPDATE

-- queue_usage --
-- What a queue's budgets have used: running (all, and on this worker) and the
-- starts inside the rate window, read after the queue's lock was taken.
WITH t AS (SELECT clock_timestamp() AS now)
SELECT
    (SELECT count(*) FROM workflows
     WHERE queue = %(queue)s AND status = 'PENDING') AS running,
    (SELECT count(*) FROM workflows
     WHERE queue = %(queue)s AND status = 'PENDING'
       AND owner_worker_id = %(worker_id)s) AS running_here,
    (SELECT count(*) FROM workflows, t
     WHERE %(rate_period)s::interval IS NOT NULL AND queue = %(queue)s
       AND dequeued_at > t.now - %(rate_period)s::interval) AS recent_starts,
    (SELECT extract(epoch FROM min(dequeued_at) + %(rate_period)s::interval - t.now)
     FROM workflows
     WHERE %(rate_period)s::interval IS NOT NULL AND queue = %(queue)s
       AND dequeued_at > t.now - %(rate_period)s::interval) AS rate_frees_in
FROM t

-- claim_queued --
-- Takes up to %(limit)s waiting workflows of a queue that the worker hosts,
-- in priority then FIFO order, whose start time has come; SKIP LOCKED lets
-- replicas claim an unlimited queue side by side.
-- Wakes the claimed workflows' watchers (`baton_status`) at commit.
WITH t AS (SELECT clock_timestamp() AS now),
picked AS (
    SELECT w.workflow_id FROM workflows w
    WHERE w.status = 'ENQUEUED' AND w.queue = %(queue)s
      AND w.workflow_name = ANY(%(workflow_names)s)
      AND (w.app_version = '' OR w.app_version = %(app_version)s)
      AND (w.start_at IS NULL OR w.start_at <= (SELECT now FROM t))
    ORDER BY w.priority, w.enqueue_seq
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE workflows w
SET status = 'PENDING',
    attempt = w.attempt + 1,
    owner_worker_id = %(worker_id)s,
    started_at = coalesce(w.started_at, t.now),
    dequeued_at = coalesce(w.dequeued_at, t.now),
    queue_deadline = coalesce(
        w.queue_deadline, t.now + coalesce(w.queue_timeout, %(queue_timeout)s::interval)),
    updated_at = now()
FROM picked, t
WHERE w.workflow_id = picked.workflow_id AND w.status = 'ENQUEUED'
RETURNING w.*, pg_notify('baton_status', w.workflow_id) IS NULL AS notified

-- claim_queued_partitioned --
-- Like claim_queued, but each partition key runs at most %(per_partition)s at
-- once: per key, the free places are filled in priority then FIFO order.
-- Runs under the queue's lock, so the counts cannot change underneath.
-- Wakes the claimed workflows' watchers (`baton_status`) at commit.
WITH t AS (SELECT clock_timestamp() AS now),
keys AS (
    SELECT DISTINCT w.partition_key FROM workflows w
    WHERE w.status = 'ENQUEUED' AND w.queue = %(queue)s
      AND (w.start_at IS NULL OR w.start_at <= (SELECT now FROM t))
),
free AS (
    SELECT k.partition_key,
           %(per_partition)s - (
               SELECT count(*) FROM workflows r
               WHERE r.queue = %(queue)s AND r.status = 'PENDING'
                 AND r.partition_key = k.partition_key) AS places
    FROM keys k
),
picked AS (
    SELECT c.workflow_id FROM free f
    CROSS JOIN LATERAL (
        SELECT w.workflow_id, w.priority, w.enqueue_seq FROM workflows w
        WHERE w.status = 'ENQUEUED' AND w.queue = %(queue)s
          AND w.partition_key = f.partition_key
          AND w.workflow_name = ANY(%(workflow_names)s)
          AND (w.app_version = '' OR w.app_version = %(app_version)s)
          AND (w.start_at IS NULL OR w.start_at <= (SELECT now FROM t))
        ORDER BY w.priority, w.enqueue_seq
        LIMIT greatest(f.places, 0)
    ) c
    ORDER BY c.priority, c.enqueue_seq
    LIMIT %(limit)s
)
UPDATE workflows w
SET status = 'PENDING',
    attempt = w.attempt + 1,
    owner_worker_id = %(worker_id)s,
    started_at = coalesce(w.started_at, t.now),
    dequeued_at = coalesce(w.dequeued_at, t.now),
    queue_deadline = coalesce(
        w.queue_deadline, t.now + coalesce(w.queue_timeout, %(queue_timeout)s::interval)),
    updated_at = now()
FROM picked, t
WHERE w.workflow_id = picked.workflow_id AND w.status = 'ENQUEUED'
RETURNING w.*, pg_notify('baton_status', w.workflow_id) IS NULL AS notified

-- next_delayed_start --
-- Seconds until the earliest delayed workflow of a queue may start, if any.
SELECT extract(epoch FROM min(start_at) - clock_timestamp()) AS starts_in
FROM workflows
WHERE status = 'ENQUEUED' AND queue = %(queue)s AND start_at > clock_timestamp()

-- cancel_timed_out --
-- Cancels queue workflows past their start-to-close deadline (counted from
-- dequeue); locked rows are skipped, another replica is on them.
WITH late AS (
    SELECT workflow_id FROM workflows
    WHERE queue_deadline < now() AND status IN ('ENQUEUED', 'PENDING')
    LIMIT 1000
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE workflows w
SET status = 'CANCELLED', owner_worker_id = NULL, completed_at = now(), updated_at = now(),
    error = jsonb_build_object(
        'type', 'baton.QueueTimeout',
        'message', 'workflow ' || w.workflow_id || ' ran past its queue timeout ('
                   || (w.queue_deadline - w.dequeued_at)::text || ' after it was dequeued)')
FROM late
WHERE w.workflow_id = late.workflow_id AND w.status IN ('ENQUEUED', 'PENDING')
RETURNING w.workflow_id, w.queue

-- notify_queue_freed --
-- Wakes every replica's dispatcher when a queue workflow frees its place.
SELECT pg_notify('baton_enqueued', 'queue/' || queue) FROM workflows
WHERE workflow_id = %(workflow_id)s AND queue <> ''
