-- next_stream_offset --
-- Takes the next offset of an open stream (creating it); nothing when it is closed.
INSERT INTO streams AS s (workflow_id, key, next_offset)
VALUES (%(workflow_id)s, %(key)s, 1)
ON CONFLICT (workflow_id, key) DO UPDATE SET next_offset = s.next_offset + 1
WHERE s.closed_at IS NULL
RETURNING s.next_offset - 1 AS "offset"

-- insert_stream_entry --
-- Appends a value at its offset; function_id is NULL for a write from inside a step.
INSERT INTO stream_entries (workflow_id, key, "offset", value_encoding, value, function_id)
VALUES (%(workflow_id)s, %(key)s, %(offset)s, %(value_encoding)s, %(value)s, %(function_id)s)

-- close_stream --
-- Closes a stream (creating it closed if it was never written).
INSERT INTO streams AS s (workflow_id, key, closed_at)
VALUES (%(workflow_id)s, %(key)s, now())
ON CONFLICT (workflow_id, key) DO UPDATE SET closed_at = coalesce(s.closed_at, now())

-- read_stream_entries --
-- Up to %(limit)s values of a stream from an offset, in order.
SELECT "offset", value_encoding, value FROM stream_entries
WHERE workflow_id = %(workflow_id)s AND key = %(key)s AND "offset" >= %(from_offset)s
ORDER BY "offset"
LIMIT %(limit)s

-- stream_state --
-- Whether a stream is closed, and whether its workflow is still active.
SELECT w.status, s.closed_at IS NOT NULL AS closed
FROM workflows w LEFT JOIN streams s ON s.workflow_id = w.workflow_id AND s.key = %(key)s
WHERE w.workflow_id = %(workflow_id)s

-- workflow_is_running --
-- Whether the attempt still owns the PENDING workflow (locks it FOR SHARE until commit).
SELECT 1 AS running FROM workflows
WHERE workflow_id = %(workflow_id)s AND status = 'PENDING' AND attempt = %(attempt)s
FOR SHARE
