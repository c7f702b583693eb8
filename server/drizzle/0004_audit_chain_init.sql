-- The audit hash chain's head row: writers lock it per batch. Events written before the
-- chain existed keep '' hashes; a 'legacy' checkpoint after the newest of them makes
-- verification start where hashing began.
INSERT INTO "audit_chain_head" ("id", "last_seq", "last_hash")
SELECT 1, COALESCE(MAX("seq"), 0), '0000000000000000000000000000000000000000000000000000000000000000'
FROM "audit_events"
ON CONFLICT ("id") DO NOTHING;
--> statement-breakpoint
INSERT INTO "audit_checkpoints" ("kind", "up_to_seq", "last_hash", "deleted_count")
SELECT 'legacy', MAX("seq"), '0000000000000000000000000000000000000000000000000000000000000000', 0
FROM "audit_events"
HAVING COUNT(*) > 0;
