-- Operating workflows: resume's fresh attempt budget, and the indexes of the
-- deadline sweep and of retention.

-- Resume gives a workflow a fresh budget of dispatches without lowering its
-- attempt number (which fences stale writers): the budget counts from here.
ALTER TABLE workflows ADD COLUMN attempts_base integer NOT NULL DEFAULT 0;

-- The deadline sweep looks for unfinished workflows whose deadline has passed.
CREATE INDEX workflows_deadline_idx ON workflows (deadline)
    WHERE deadline IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');
-- Retention deletes finished workflows by completion time; listing filters by it.
CREATE INDEX workflows_completed_idx ON workflows (completed_at)
    WHERE completed_at IS NOT NULL;
