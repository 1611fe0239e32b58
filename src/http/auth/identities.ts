import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { ACTIONS } from '../../auth/actions.ts';
import { parseAclRules } from '../../auth/acl-rules.ts';
import { PATTERN_SOURCE } from '../../auth/glob.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../../auth/passwords.ts';
import { ROLES, type Role } from '../../auth/roles.ts';
import { serviceTokenView } from '../../auth/service-tokens.ts';
import { USER_NAME_PATTERN, UserError, userView } from '../../auth/users.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';

const RoleSchema = Type.Union(ROLES.map((r) => Type.Literal(r)));
const UserName = Type.String({ pattern: USER_NAME_PATTERN, description: 'letters, digits, . _ @ -; up to 64 characters' });
const Password = Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH });
const UserParams = Type.Object({ userName: UserName });

const UserView = Type.Object({ userName: Type.String(), role: Type.String(), createdAt: Type.String(), updatedAt: Type.String() });
const CreateUser = Type.Object({ userName: UserName, password: Password, role: RoleSchema }, { additionalProperties: false });

const Scope = Type.Object(
  {
    actions: Type.Array(Type.Union(ACTIONS.map((a) => Type.Literal(a))), { minItems: 1, maxItems: ACTIONS.length }),
    services: Type.String({ pattern: PATTERN_SOURCE, description: 'service-name pattern; * is a wildcard' }),
  },
  { additionalProperties: false },
);
const CreateToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: 50 }),
    expiresInSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86_400, description: 'omit for a token that lasts until revoked' })),
  },
  { additionalProperties: false },
);
const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Scope),
  createdBy: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
});
const AclRuleSchema = Type.Object({
  effect: Type.String(),
  principal: Type.String(),
  actions: Type.Array(Type.String()),
  services: Type.String(),
});

const errors = { 400: Type.Ref('Error'), 401: Type.Ref('Error'), 403: Type.Ref('Error'), 404: Type.Ref('Error'), 409: Type.Ref('Error'), 503: Type.Ref('Error') };

/** A refused change of a user as the API answers it: 404 for no such user, 409 for a name taken or a concurrent change. */
export function userProblem(error: unknown): never {
  if (error instanceof UserError) {
    throw error.kind === 'missing' ? new ApiError(404, 'NOT_FOUND', error.message) : new ApiError(409, 'CONFLICT', error.message);
  }
  throw error;
}

/** Users, service tokens and ACL rules: all `users:manage` (admins by default). */
export function identityRoutes(ctx: AppContext): FastifyPluginAsync {
  const { security } = ctx;
  const { users } = security;

  /** Nobody could manage users any more: refused rather than locking everyone out. */
  const keepAnAdmin = (userName: string, newRole: Role | null): void => {
    const user = users.get(userName);
    if (user?.role !== 'admin' || newRole === 'admin') return;
    if (users.list().filter((u) => u.role === 'admin').length <= 1) {
      throw new ApiError(409, 'CONFLICT', `"${userName}" is the last admin; make another admin first.`);
    }
  };

  return async (app) => {
    const manage = { permission: 'users:manage' as const };

    app.get('/users', { config: manage, schema: { tags: ['maxine'], summary: 'List users', response: { 200: Type.Object({ users: Type.Array(UserView) }), ...errors } } }, async () => ({
      users: users.list().map(userView),
    }));

    app.post(
      '/users',
      { config: manage, schema: { tags: ['maxine'], summary: 'Create a user', body: CreateUser, response: { 201: UserView, ...errors } } },
      async (request, reply) => {
        const { userName, password, role } = request.body as Static<typeof CreateUser>;
        const user = await users.create(userName, password, role).catch(userProblem);
        reply.code(201);
        return userView(user);
      },
    );

    app.delete(
      '/users/:userName',
      { config: manage, schema: { tags: ['maxine'], summary: "Delete a user; their tokens stop working", params: UserParams, response: { 200: Type.Object({ message: Type.String() }), ...errors } } },
      async (request) => {
        const { userName } = request.params as Static<typeof UserParams>;
        keepAnAdmin(userName, null);
        await users.remove(userName).catch(userProblem);
        return { message: `User "${userName}" deleted.` };
      },
    );

    app.put(
      '/users/:userName/role',
      {
        config: manage,
        schema: {
          tags: ['maxine'],
          summary: "Change a user's role; their older tokens stop working",
          params: UserParams,
          body: Type.Object({ role: RoleSchema }, { additionalProperties: false }),
          response: { 200: UserView, ...errors },
        },
      },
      async (request) => {
        const { userName } = request.params as Static<typeof UserParams>;
        const { role } = request.body as { role: Role };
        keepAnAdmin(userName, role);
        return userView(await users.setRole(userName, role).catch(userProblem));
      },
    );

    app.put(
      '/users/:userName/password',
      {
        config: manage,
        schema: {
          tags: ['maxine'],
          summary: "Reset a user's password; their older tokens stop working",
          params: UserParams,
          body: Type.Object({ password: Password }, { additionalProperties: false }),
          response: { 200: UserView, ...errors },
        },
      },
      async (request) => {
        const { userName } = request.params as Static<typeof UserParams>;
        const { password } = request.body as { password: string };
        return userView(await users.setPassword(userName, password).catch(userProblem));
      },
    );

    app.get('/tokens', { config: manage, schema: { tags: ['maxine'], summary: 'List service tokens (never their secrets)', response: { 200: Type.Object({ tokens: Type.Array(TokenView) }), ...errors } } }, async () => ({
      tokens: security.serviceTokens.list().map(serviceTokenView),
    }));

    app.post(
      '/tokens',
      {
        config: manage,
        schema: {
          tags: ['maxine'],
          summary: 'Create a service token scoped to actions and service-name patterns',
          description: 'The token is in this answer only; Maxine keeps just its SHA-256.',
          body: CreateToken,
          response: { 201: Type.Object({ token: Type.String(), ...TokenView.properties }), ...errors },
        },
      },
      async (request, reply) => {
        const body = request.body as Static<typeof CreateToken>;
        const { principal } = request;
        const { record, token } = await security.serviceTokens.create({
          name: body.name,
          scopes: body.scopes,
          expiresAt: body.expiresInSec === undefined ? null : Date.now() + body.expiresInSec * 1000,
          createdBy: `${principal.kind}:${principal.id}`,
        });
        reply.code(201);
        return { token, ...serviceTokenView(record) };
      },
    );

    app.delete(
      '/tokens/:id',
      {
        config: manage,
        schema: {
          tags: ['maxine'],
          summary: 'Revoke a service token',
          params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }),
          response: { 200: Type.Object({ message: Type.String() }), ...errors },
        },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        if (!(await security.serviceTokens.revoke(id))) throw new ApiError(404, 'NOT_FOUND', `No service token "${id}".`);
        return { message: `Service token "${id}" revoked.` };
      },
    );

    app.get('/acl', { config: manage, schema: { tags: ['maxine'], summary: 'The ACL rules in force', response: { 200: Type.Object({ rules: Type.Array(AclRuleSchema) }), ...errors } } }, async () => ({
      rules: security.aclRulesInForce(),
    }));

    app.put(
      '/acl',
      {
        config: manage,
        schema: {
          tags: ['maxine'],
          summary: 'Replace the ACL rules (deny wins over every grant)',
          body: Type.Object({ rules: Type.Array(Type.Unknown()) }, { additionalProperties: false }),
          response: { 200: Type.Object({ rules: Type.Array(AclRuleSchema) }), ...errors },
        },
      },
      async (request) => {
        const parsed = parseAclRules((request.body as { rules: unknown }).rules);
        if ('problems' in parsed) throw ApiError.validation(parsed.problems);
        await security.setAclRules(parsed.rules);
        return { rules: parsed.rules };
      },
    );
  };
}
