-- Traces (issue 18): an event's W3C trace context (`traceparent` of its span; NULL when tracing
-- was off), carried by claims to its attempts; and whether a target's requests carry the
-- attempt's `traceparent` to its receiver (webhook endpoints, Custom APIs, destinations).
ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE targets ADD COLUMN propagate_trace BOOLEAN NOT NULL DEFAULT FALSE;
