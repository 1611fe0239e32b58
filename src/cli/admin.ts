import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import type { Dispatcher } from 'undici';
import { ACTIONS, isAction, type Action } from '../auth/actions.ts';
import { PATTERN_SOURCE } from '../auth/glob.ts';
import { ROLES, type Role } from '../auth/roles.ts';

/*
 * `maxine users …` and `maxine tokens …`: clients of the admin routes
 * (src/http/auth/identities.ts, sessions.ts). They talk HTTP only; nothing
 * here may load the server or fastify. undici is imported when a command
 * runs, so `maxine serve` does not pay for it.
 *
 * Passwords never come from arguments (process lists show those) and are
 * never printed, except one this module generated and must hand over.
 */

const DEFAULT_URL = 'http://127.0.0.1:8080';
const API = '/api/maxine';

interface Scope {
  readonly actions: Action[];
  readonly services: string;
}

interface Flags {
  readonly url?: URL;
  readonly token?: string;
  readonly user?: string;
  readonly passwordStdin?: boolean;
  readonly newPasswordStdin?: boolean;
  readonly caFile?: string;
  readonly json?: boolean;
  readonly role?: Role;
  readonly scope?: Scope[];
  readonly expiresInSec?: number;
}

/** Something the invocation got wrong: exit 2, like commander's own usage errors. */
class UsageProblem extends Error {}
/** The server refused, or could not be reached: exit 1. */
class Failure extends Error {}

interface Client {
  /** The answer's JSON on 2xx; anything else throws a Failure naming the server's message and the status. */
  call(method: string, path: string, body?: unknown): Promise<any>;
}

interface NewPassword {
  readonly password: string;
  /** True when this module made it up, so it has to be shown once. */
  readonly generated: boolean;
}

interface Run {
  readonly client: Client;
  readonly json: boolean;
  /** Set when the command asked for one (create, reset-password). */
  readonly newPassword: NewPassword | null;
}

// ---------------------------------------------------------------- parsing

function parseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`"${value}" is not an http or https URL.`);
  if (url.username !== '' || url.password !== '') throw new InvalidArgumentError('give credentials with --token or --user, not in the URL.');
  return url;
}

const PATTERN = new RegExp(PATTERN_SOURCE);

/** `register,discover:orders-*`; actions may contain `:` themselves (`registry:read`), patterns cannot. */
export function parseScope(value: string): Scope {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw new InvalidArgumentError(`"${value}" is not <actions>:<pattern> (e.g. register,discover:orders-*).`);
  const services = value.slice(colon + 1);
  const actions = value.slice(0, colon).split(',').map((a) => a.trim());
  const unknown = actions.filter((a) => !isAction(a));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown action ${unknown.map((a) => `"${a}"`).join(', ')}; actions are ${ACTIONS.join(', ')}.`);
  if (!PATTERN.test(services)) throw new InvalidArgumentError(`"${services}" is not a service-name pattern (letters, digits, . _ - and * as a wildcard).`);
  return { actions: [...new Set(actions as Action[])], services };
}

function parsePositiveInteger(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a whole number of seconds.`);
  return Number(value);
}

function formatScope(scope: Scope): string {
  return `${scope.actions.join(',')}:${scope.services}`;
}

// ------------------------------------------------------------- credentials

type Credentials = { readonly kind: 'token'; readonly token: string } | { readonly kind: 'user'; readonly userName: string };

/** --token, else --user, else MAXINE_TOKEN, else MAXINE_USER: a flag given on the command line beats the environment. */
function credentialsOf(flags: Flags): Credentials {
  if (flags.token !== undefined && flags.user !== undefined) throw new UsageProblem('give --token or --user, not both.');
  const env = process.env;
  if (flags.token !== undefined) return { kind: 'token', token: flags.token };
  if (flags.user !== undefined) return { kind: 'user', userName: flags.user };
  if (env.MAXINE_TOKEN) return { kind: 'token', token: env.MAXINE_TOKEN };
  if (env.MAXINE_USER) return { kind: 'user', userName: env.MAXINE_USER };
  throw new UsageProblem('no credentials: give --token (or MAXINE_TOKEN), or --user (or MAXINE_USER) with MAXINE_PASSWORD or --password-stdin.');
}

/** The first `count` lines of stdin, without their line ends. */
async function stdinLines(count: number): Promise<string[]> {
  if (count === 0) return [];
  const lines: string[] = [];
  const reader = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  for await (const line of reader) {
    lines.push(line.replace(/\r$/, ''));
    if (lines.length === count) break;
  }
  reader.close();
  process.stdin.destroy();
  return lines;
}

function baseUrl(flags: Flags): URL {
  if (flags.url !== undefined) return flags.url;
  const fromEnv = process.env.MAXINE_URL;
  if (!fromEnv) return new URL(DEFAULT_URL);
  try {
    return parseUrl(fromEnv);
  } catch (error) {
    throw new UsageProblem(`MAXINE_URL: ${(error as Error).message}`);
  }
}

// ------------------------------------------------------------------- HTTP

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
]);

function networkProblem(base: URL, error: unknown): Failure {
  let cause: unknown = error;
  // undici wraps socket errors; AggregateError (several addresses tried) carries them in .errors.
  while (cause instanceof Error && !(cause as NodeJS.ErrnoException).code && cause.cause !== undefined) cause = cause.cause;
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0];
  const err = cause as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const message = err instanceof Error && err.message !== '' ? err.message : (code ?? String(error));
  const detail = code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
  const hint = code !== undefined && TLS_TRUST_CODES.has(code) ? '; give the CA that signed its certificate with --ca-file' : '';
  return new Failure(`cannot reach ${base.origin}: ${detail}${hint}`);
}

function refusal(what: string, status: number, text: string): Failure {
  let body: { message?: unknown; code?: unknown; details?: unknown } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const message =
    typeof body?.message === 'string' ? body.message : `unexpected answer${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`;
  const code = typeof body?.code === 'string' ? ` ${body.code}` : '';
  let line = `${what}${message} (HTTP ${status}${code})`;
  if (Array.isArray(body?.details)) {
    for (const d of body.details as { field?: unknown; problem?: unknown }[]) {
      if (typeof d?.field === 'string' && typeof d.problem === 'string') line += `\n  ${d.field}: ${d.problem}`;
    }
  }
  return new Failure(line);
}

async function connect(base: URL, caFile: string | undefined, credentials: Credentials, password: string | undefined): Promise<{ client: Client; close: () => Promise<void> }> {
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new UsageProblem(`cannot read --ca-file ${caFile}: ${(error as Error).message}`);
    }
  }
  const { Agent, request } = await import('undici');
  const dispatcher: Dispatcher = new Agent({
    connect: { timeout: 10_000, ...(ca === undefined ? {} : { ca }) },
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const prefix = base.pathname.replace(/\/+$/, '') + API;

  const send = async (method: string, path: string, body: unknown, bearer: string | undefined, what: string): Promise<any> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let answer: Dispatcher.ResponseData;
    let text: string;
    try {
      answer = await request(new URL(prefix + path, base.origin), {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher,
      });
      text = await answer.body.text();
    } catch (error) {
      throw networkProblem(base, error);
    }
    if (answer.statusCode < 200 || answer.statusCode > 299) throw refusal(what, answer.statusCode, text);
    try {
      return text === '' ? {} : JSON.parse(text);
    } catch {
      throw new Failure(`${method} ${path}: the answer is not JSON (HTTP ${answer.statusCode})`);
    }
  };

  const close = () => dispatcher.destroy();
  try {
    let bearer: string;
    if (credentials.kind === 'token') {
      bearer = credentials.token;
    } else {
      const session = await send('POST', '/signin', { userName: credentials.userName, password }, undefined, `signing in as "${credentials.userName}" failed: `);
      bearer = String(session.accessToken);
    }
    return { client: { call: (method, path, body) => send(method, path, body, bearer, '') }, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Resolve the common options, read stdin, sign in if need be, run, and turn problems into exit codes. */
async function run(command: Command, wantsNewPassword: boolean, work: (run: Run) => Promise<void>): Promise<void> {
  const flags = command.opts<Flags>();
  try {
    const base = baseUrl(flags);
    const credentials = credentialsOf(flags);
    if (flags.passwordStdin && credentials.kind !== 'user') throw new UsageProblem('--password-stdin goes with --user (or MAXINE_USER), not with a token.');
    const fromEnv = credentials.kind === 'user' && !flags.passwordStdin ? process.env.MAXINE_PASSWORD : undefined;
    if (credentials.kind === 'user' && !flags.passwordStdin && !fromEnv) {
      throw new UsageProblem(`no password for "${credentials.userName}": set MAXINE_PASSWORD or give --password-stdin.`);
    }
    // One stdin, read in order: the sign-in password first, then the new password.
    const wanted = (flags.passwordStdin ? 1 : 0) + (wantsNewPassword && flags.newPasswordStdin ? 1 : 0);
    const lines = await stdinLines(wanted);
    if (lines.length < wanted) throw new UsageProblem(`expected ${wanted === 1 ? 'a password' : `${wanted} passwords, one per line,`} on stdin.`);
    if (lines.some((l) => l === '')) throw new UsageProblem('a password on stdin is empty.');
    const password = flags.passwordStdin ? lines.shift() : fromEnv;
    let newPassword: NewPassword | null = null;
    if (wantsNewPassword) {
      const given = flags.newPasswordStdin ? lines.shift() : process.env.MAXINE_NEW_PASSWORD || undefined;
      newPassword = given !== undefined ? { password: given, generated: false } : { password: randomBytes(18).toString('base64url'), generated: true };
    }
    const { client, close } = await connect(base, flags.caFile, credentials, password);
    try {
      await work({ client, json: flags.json === true, newPassword });
    } finally {
      await close();
    }
  } catch (error) {
    if (error instanceof UsageProblem) command.error(`error: ${error.message}`, { exitCode: 2, code: 'maxine.usage' });
    if (error instanceof Failure) {
      process.stderr.write(`maxine: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

// ------------------------------------------------------------------ output

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Columns padded to their widest cell; the last one is not padded. */
function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  for (const row of [header, ...rows]) print(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

/** Shown once, on stdout, because nobody else knows it. */
function printGenerated(newPassword: NewPassword | null): void {
  if (newPassword?.generated) print(`Generated password (shown only once): ${newPassword.password}`);
}

function withGenerated(answer: object, newPassword: NewPassword | null): object {
  return newPassword?.generated ? { ...answer, generatedPassword: newPassword.password } : answer;
}

// ---------------------------------------------------------------- commands

const CREDENTIAL_HELP = `
Credentials: --token / MAXINE_TOKEN (a session access token or a service token), else
--user / MAXINE_USER with the password from MAXINE_PASSWORD, or from the first line of
stdin with --password-stdin; the command signs in first. A flag beats the environment.
Passwords are never taken as arguments.`;

const NEW_PASSWORD_HELP = `
The new password is the next line of stdin with --new-password-stdin (after the sign-in
password when --password-stdin is also given), else MAXINE_NEW_PASSWORD; without either,
a strong random password is generated and printed once on stdout.`;

/** A leaf command with its own options, then the ones every admin command takes under their own heading. */
function adminCommand(parent: Command, nameAndArgs: string, description: string, own: readonly Option[] = []): Command {
  const common = [
    new Option('--url <url>', `Maxine's base URL [env: MAXINE_URL] [default: ${DEFAULT_URL}]`).argParser(parseUrl),
    new Option('--token <token>', 'bearer token: a session access token or a service token [env: MAXINE_TOKEN]'),
    new Option('--user <name>', 'sign in as this user [env: MAXINE_USER]; password from MAXINE_PASSWORD or --password-stdin'),
    new Option('--password-stdin', "read the signing-in user's password from the first line of stdin"),
    new Option('--ca-file <pem>', 'trust the CA certificates in this PEM file (HTTPS with a private CA)'),
    new Option('--json', "print the server's JSON answer"),
  ];
  const command = parent.command(nameAndArgs).description(description).addHelpText('after', CREDENTIAL_HELP);
  for (const option of own) command.addOption(option);
  for (const option of common) command.addOption(option.helpGroup('Connection options:'));
  return command;
}

/** A command that sets a password (create, reset-password). */
function withNewPassword(command: Command): Command {
  return command.addHelpText('after', NEW_PASSWORD_HELP);
}

const newPasswordOption = () => new Option('--new-password-stdin', 'read the new password from stdin [else env: MAXINE_NEW_PASSWORD; else generated]');

const userPath = (userName: string) => `/users/${encodeURIComponent(userName)}`;

interface UserView {
  userName: string;
  role: string;
  createdAt: string;
  updatedAt: string;
}

interface TokenView {
  id: string;
  name: string;
  scopes: Scope[];
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
}

/** Adds `maxine users …` and `maxine tokens …` to the program. */
export function registerAdminCommands(program: Command): void {
  const users = program.command('users').description('Manage users (needs users:manage: admins by default)');

  adminCommand(users, 'list', 'List users and their roles').action(async (_opts, command: Command) =>
    run(command, false, async ({ client, json }) => {
      const answer = (await client.call('GET', '/users')) as { users: UserView[] };
      if (json) return printJson(answer);
      if (answer.users.length === 0) return print('No users.');
      printTable(
        ['USER', 'ROLE', 'CREATED', 'UPDATED'],
        answer.users.map((u) => [u.userName, u.role, u.createdAt, u.updatedAt]),
      );
    }),
  );

  withNewPassword(
    adminCommand(users, 'create <userName>', 'Create a user', [
      new Option('--role <role>', "the user's role").choices(ROLES).makeOptionMandatory(),
      newPasswordOption(),
    ]),
  )
    .action(async (userName: string, opts: Flags, command: Command) =>
      run(command, true, async ({ client, json, newPassword }) => {
        const answer = (await client.call('POST', '/users', { userName, password: newPassword!.password, role: opts.role })) as UserView;
        if (json) return printJson(withGenerated(answer, newPassword));
        print(`User "${answer.userName}" created with role ${answer.role}.`);
        printGenerated(newPassword);
      }),
    );

  adminCommand(users, 'delete <userName>', "Delete a user; their tokens stop working").action(async (userName: string, _opts, command: Command) =>
    run(command, false, async ({ client, json }) => {
      const answer = (await client.call('DELETE', userPath(userName))) as { message: string };
      print(json ? JSON.stringify(answer, null, 2) : answer.message);
    }),
  );

  adminCommand(users, 'set-role <userName>', "Change a user's role; their older tokens stop working")
    .addArgument(new Argument('<role>', 'the new role').choices(ROLES))
    .action(async (userName: string, role: Role, _opts, command: Command) =>
      run(command, false, async ({ client, json }) => {
        const answer = (await client.call('PUT', `${userPath(userName)}/role`, { role })) as UserView;
        if (json) return printJson(answer);
        print(`User "${answer.userName}" now has role ${answer.role}.`);
      }),
    );

  withNewPassword(adminCommand(users, 'reset-password <userName>', "Set a user's password; their older tokens stop working", [newPasswordOption()])).action(
    async (userName: string, _opts, command: Command) =>
      run(command, true, async ({ client, json, newPassword }) => {
        const answer = (await client.call('PUT', `${userPath(userName)}/password`, { password: newPassword!.password })) as UserView;
        if (json) return printJson(withGenerated(answer, newPassword));
        print(`Password of "${answer.userName}" reset.`);
        printGenerated(newPassword);
      }),
  );

  const tokens = program.command('tokens').description('Manage service tokens (needs users:manage: admins by default)');

  adminCommand(tokens, 'list', 'List service tokens (never their secrets)').action(async (_opts, command: Command) =>
    run(command, false, async ({ client, json }) => {
      const answer = (await client.call('GET', '/tokens')) as { tokens: TokenView[] };
      if (json) return printJson(answer);
      if (answer.tokens.length === 0) return print('No service tokens.');
      printTable(
        ['ID', 'NAME', 'EXPIRES', 'CREATED BY', 'SCOPES'],
        answer.tokens.map((t) => [t.id, t.name, t.expiresAt ?? 'never', t.createdBy, t.scopes.map(formatScope).join(' ')]),
      );
    }),
  );

  adminCommand(tokens, 'create <name>', 'Create a service token; it is shown once', [
    new Option('--scope <actions:pattern>', `what the token may do, e.g. register,discover:orders-* (repeatable); actions: ${ACTIONS.join(', ')}`)
      .argParser((value: string, previous: Scope[] | undefined) => [...(previous ?? []), parseScope(value)])
      .makeOptionMandatory(),
    new Option('--expires-in-sec <n>', 'lifetime in seconds (60 to 10 years); omit for a token that lasts until revoked').argParser(parsePositiveInteger),
  ])
    .action(async (name: string, opts: Flags, command: Command) =>
      run(command, false, async ({ client, json }) => {
        const body = { name, scopes: opts.scope, ...(opts.expiresInSec === undefined ? {} : { expiresInSec: opts.expiresInSec }) };
        const answer = (await client.call('POST', '/tokens', body)) as TokenView & { token: string };
        if (json) return printJson(answer);
        print(`Service token "${answer.name}" created: id ${answer.id}, expires ${answer.expiresAt ?? 'never'}, scopes ${answer.scopes.map(formatScope).join(' ')}.`);
        print(`Token (shown only once): ${answer.token}`);
      }),
    );

  adminCommand(tokens, 'revoke <id>', 'Revoke a service token').action(async (id: string, _opts, command: Command) =>
    run(command, false, async ({ client, json }) => {
      const answer = (await client.call('DELETE', `/tokens/${encodeURIComponent(id)}`)) as { message: string };
      print(json ? JSON.stringify(answer, null, 2) : answer.message);
    }),
  );
}
