-- Leased deliveries by target: the claim counts a target's leases (across nodes) to keep its
-- concurrency cap, and only leased rows are in this index, so the count stays cheap.
CREATE INDEX deliveries_leased ON deliveries(target_id) WHERE lease_token IS NOT NULL;
