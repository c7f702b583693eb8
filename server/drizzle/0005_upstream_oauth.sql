CREATE TABLE "oauth_pending_authorizations" (
	"state" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"server_id" uuid NOT NULL,
	"thread_id" text DEFAULT '' NOT NULL,
	"key_id" text NOT NULL,
	"wrapped_key" text NOT NULL,
	"ciphertext" text NOT NULL,
	"authorization_url" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone
);
--> statement-breakpoint
DROP INDEX "credentials_owner_key";--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "oauth" jsonb;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "kind" text DEFAULT 'values' NOT NULL;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "credentials" ADD COLUMN "status" text DEFAULT 'ok' NOT NULL;--> statement-breakpoint
ALTER TABLE "oauth_pending_authorizations" ADD CONSTRAINT "oauth_pending_authorizations_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "oauth_pending_authorizations_expires" ON "oauth_pending_authorizations" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "credentials_refresh_due" ON "credentials" USING btree ("kind","status","expires_at");--> statement-breakpoint
-- The old unique index let server-scope rows (user_id NULL) repeat: keep the newest of each.
DELETE FROM "credentials" AS a USING "credentials" AS b WHERE a."scope" = b."scope" AND a."kind" = b."kind" AND a."server_id" = b."server_id" AND a."user_id" IS NOT DISTINCT FROM b."user_id" AND a."thread_id" = b."thread_id" AND (a."updated_at", a."id") < (b."updated_at", b."id");--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_owner_unique" UNIQUE NULLS NOT DISTINCT("scope","kind","server_id","user_id","thread_id");