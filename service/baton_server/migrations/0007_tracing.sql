-- The trace context a workflow was started in (W3C traceparent/tracestate),
-- handed to its worker so the workflow's spans join the caller's trace.
ALTER TABLE workflows ADD COLUMN trace_carrier jsonb;
