-- upsert_worker --
-- Registers a worker (or re-registers it after a reconnect) on this replica.
INSERT INTO workers (
    worker_id, replica_id, app_version, display_name, sdk, workflow_names, step_names,
    lease_expires_at)
VALUES (
    %(worker_id)s, %(replica_id)s, %(app_version)s, %(display_name)s, %(sdk)s,
    %(workflow_names)s, %(step_names)s, now() + %(lease)s)
ON CONFLICT (worker_id) DO UPDATE
SET replica_id = excluded.replica_id, app_version = excluded.app_version,
    display_name = excluded.display_name, sdk = excluded.sdk,
    workflow_names = excluded.workflow_names, step_names = excluded.step_names,
    connected_at = now(), lease_expires_at = excluded.lease_expires_at

-- renew_leases --
-- Extends the leases of all this replica's live workers: one write per interval.
UPDATE workers SET lease_expires_at = now() + %(lease)s, replica_id = %(replica_id)s
WHERE worker_id = ANY(%(worker_ids)s)

-- forget_workers --
-- Deletes workers whose lease ended long ago.
DELETE FROM workers WHERE lease_expires_at < now() - %(keep)s
