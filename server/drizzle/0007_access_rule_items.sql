ALTER TABLE "access_rules" ADD COLUMN "prompts" jsonb;--> statement-breakpoint
ALTER TABLE "access_rules" ADD COLUMN "resources" jsonb;