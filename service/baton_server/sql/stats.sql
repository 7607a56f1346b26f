-- unfinished_counts --
-- How many unfinished workflows there are, by queue and status (for metrics).
SELECT queue, status, count(*) AS n FROM workflows
WHERE status IN ('ENQUEUED', 'PENDING')
GROUP BY queue, status
