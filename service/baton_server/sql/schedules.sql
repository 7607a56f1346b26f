-- insert_schedule --
-- Creates a schedule; returns nothing when the name is taken.
INSERT INTO schedules (
    name, cron, time_zone, workflow_name, queue, context_encoding, context, paused,
    next_fire_at)
VALUES (
    %(name)s, %(cron)s, %(time_zone)s, %(workflow_name)s, %(queue)s, %(context_encoding)s,
    %(context)s, %(paused)s, %(next_fire_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- get_schedule --
-- One schedule by name.
SELECT * FROM schedules WHERE name = %(name)s

-- list_schedules --
-- A page of schedules by name after %(after)s.
SELECT * FROM schedules WHERE name > %(after)s ORDER BY name LIMIT %(limit)s

-- set_schedule_paused --
-- Pauses or resumes a schedule (a resumed one fires from %(next_fire_at)s on).
UPDATE schedules
SET paused = %(paused)s,
    next_fire_at = CASE WHEN %(paused)s THEN next_fire_at ELSE %(next_fire_at)s END,
    updated_at = now()
WHERE name = %(name)s
RETURNING *

-- delete_schedule --
-- Deletes a schedule; the workflows it started stay.
DELETE FROM schedules WHERE name = %(name)s

-- declare_schedule --
-- A worker's schedule: created, or given the worker's cron, zone and workflow
-- when they differ (then it fires from %(next_fire_at)s); pause, queue and
-- context stay as they are.
INSERT INTO schedules (name, cron, time_zone, workflow_name, next_fire_at)
VALUES (%(name)s, %(cron)s, %(time_zone)s, %(workflow_name)s, %(next_fire_at)s)
ON CONFLICT (name) DO UPDATE
SET cron = excluded.cron, time_zone = excluded.time_zone,
    workflow_name = excluded.workflow_name, next_fire_at = excluded.next_fire_at,
    updated_at = now()
WHERE (schedules.cron, schedules.time_zone, schedules.workflow_name)
      IS DISTINCT FROM (excluded.cron, excluded.time_zone, excluded.workflow_name)
RETURNING name

-- claim_due_schedules --
-- Locks due, unpaused schedules no other replica is firing; with the database's clock.
WITH clock AS (SELECT clock_timestamp() AS now)
SELECT s.*, clock.now AS now
FROM schedules s, clock
WHERE NOT s.paused AND s.next_fire_at <= clock.now
ORDER BY s.next_fire_at
LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED

-- advance_schedule --
-- Moves a fired schedule to its next tick, if it still waits for %(expected)s.
UPDATE schedules
SET next_fire_at = %(next_fire_at)s,
    last_fired_at = COALESCE(%(last_fired_at)s, last_fired_at),
    updated_at = now()
WHERE name = %(name)s AND next_fire_at = %(expected)s

-- seconds_to_next_tick --
-- Seconds until the nearest tick of an unpaused schedule (negative when due), if any.
SELECT EXTRACT(EPOCH FROM min(next_fire_at) - clock_timestamp())::float8 AS seconds
FROM schedules WHERE NOT paused

-- database_now --
-- The database's clock, which every replica shares.
SELECT clock_timestamp() AS now

-- notify_schedules --
-- Tells every replica's scheduler that schedules changed.
SELECT pg_notify('baton_schedules', %(name)s)
