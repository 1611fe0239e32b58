import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomPassword } from './passwords.ts';
import type { Role } from './roles.ts';
import { UserError, type Users } from './users.ts';

/** Where the generated admin password is written (mode 0600), for operators who missed the console. */
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

export interface ConfiguredUser {
  readonly userName: string;
  readonly password: string;
  readonly role: Role;
}

export interface BootstrapOptions {
  readonly users: Users;
  /** MAXINE_ADMIN_*, MAXINE_OPERATOR_*, MAXINE_VIEWER_*: created when absent, never overwritten (a password changed through the API stays changed). */
  readonly configured: readonly ConfiguredUser[];
  readonly dataDir: string;
  /** Shown once to whoever started the server (not the log, which may be shipped elsewhere). */
  readonly announce: (message: string) => void;
}

/**
 * Makes sure somebody can administer. The original shipped admin/admin;
 * here a start with no admin (none stored, none configured) creates `admin`
 * with a random password, shown once and written to the data directory.
 * Run by the leader only, so replicas starting together do not each create
 * a different admin.
 */
export async function bootstrapUsers(options: BootstrapOptions): Promise<void> {
  const { users } = options;
  for (const user of options.configured) {
    if (users.get(user.userName) === undefined) await createUnlessTaken(users, user.userName, user.password, user.role);
  }
  // Operators and viewers alone would leave nobody able to manage users.
  if (users.hasAdmin()) return;
  const password = randomPassword();
  const userName = users.get('admin') === undefined ? 'admin' : 'maxine-admin';
  // Another replica's bootstrap got there first (leadership changed hands meanwhile): its password is the one shown.
  if (!(await createUnlessTaken(users, userName, password, 'admin'))) return;
  const file = join(options.dataDir, INITIAL_PASSWORD_FILE);
  await writeFile(file, `userName: ${userName}\npassword: ${password}\n`, { mode: 0o600 });
  options.announce(
    [
      'No admin existed, so Maxine created one:',
      `  userName: ${userName}`,
      `  password: ${password}`,
      `It is also in ${file} (mode 0600). Sign in and change it with PUT /api/maxine/change-password, then delete that file.`,
    ].join('\n'),
  );
}

/** Creates the user; false when the name was taken meanwhile (by another replica), which is not an error here. */
async function createUnlessTaken(users: Users, userName: string, password: string, role: Role): Promise<boolean> {
  try {
    await users.create(userName, password, role);
    return true;
  } catch (error) {
    if (error instanceof UserError && error.kind === 'exists') return false;
    throw error;
  }
}
