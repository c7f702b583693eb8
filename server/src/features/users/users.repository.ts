import { eq } from 'drizzle-orm';
import type { Role } from '../../core/principal.ts';
import type { Database } from '../../platform/db/database.ts';
import { users } from './users.schema.ts';

export type UserRow = typeof users.$inferSelect;

export class UsersRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async findById(id: string): Promise<UserRow | undefined> {
    const [row] = await this.#db.select().from(users).where(eq(users.id, id));
    return row;
  }

  async findBySubject(subject: string): Promise<UserRow | undefined> {
    const [row] = await this.#db.select().from(users).where(eq(users.subject, subject));
    return row;
  }

  /** Inserts the user unless one with the subject exists; returns the stored row either way. */
  async upsertBySubject(values: {
    subject: string;
    displayName: string;
    email?: string | null;
    role: Role;
    groups?: string[];
  }): Promise<UserRow> {
    const [row] = await this.#db
      .insert(users)
      .values(values)
      .onConflictDoUpdate({
        target: users.subject,
        set: {
          displayName: values.displayName,
          email: values.email ?? null,
          role: values.role,
          ...(values.groups ? { groups: values.groups } : {}),
          lastSeenAt: new Date(),
        },
      })
      .returning();
    return row!;
  }

  /** Changes a user's role or disabled mark; undefined when there is no such user. */
  async update(id: string, values: { role?: Role; disabledAt?: Date | null }): Promise<UserRow | undefined> {
    const [row] = await this.#db.update(users).set(values).where(eq(users.id, id)).returning();
    return row;
  }

  async list(): Promise<UserRow[]> {
    return this.#db.select().from(users).orderBy(users.createdAt);
  }
}
