-- record_wait_deadline --
-- Records a durable wait's deadline the first time; later calls keep the first one.
INSERT INTO wait_deadlines (workflow_id, function_id, deadline)
VALUES (%(workflow_id)s, %(function_id)s, now() + %(duration)s)
ON CONFLICT (workflow_id, function_id) DO NOTHING

-- get_wait_deadline --
-- A recorded deadline and the seconds left until it.
SELECT deadline, greatest(0, extract(epoch FROM deadline - now()))::float8 AS remaining
FROM wait_deadlines WHERE workflow_id = %(workflow_id)s AND function_id = %(function_id)s
