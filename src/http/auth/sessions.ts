import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../../auth/passwords.ts';
import { AuthenticationError } from '../../auth/authenticator.ts';
import { RefreshFamilyLagError } from '../../auth/refresh-families.ts';
import type { IssuedSession } from '../../auth/sessions.ts';
import type { UserRecord } from '../../auth/users.ts';
import type { AuditResult } from '../../observe/audit.ts';
import { auditEvent } from '../access.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { userProblem } from './identities.ts';

const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH });
const NewPassword = Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH });

const SigninBody = Type.Object(
  { userName: Type.String({ minLength: 1, maxLength: 64 }), password: Password },
  { additionalProperties: false },
);
const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false });
const ChangePasswordBody = Type.Object({ password: Password, newPassword: NewPassword }, { additionalProperties: false });

const Session = Type.Object({
  accessToken: Type.String(),
  role: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'seconds until the access token expires' }),
});

const errors = { 400: Type.Ref('Error'), 401: Type.Ref('Error'), 429: Type.Ref('Error'), 503: Type.Ref('Error') };

/** Seconds a client waits before retrying a refresh this replica has not caught up with. */
const LAG_RETRY_AFTER_SEC = 1;

/** Sign-in (the original's shape plus a refresh token), refresh, sign-out, change-password, whoami and the JWKS. */
export function sessionRoutes(ctx: AppContext): FastifyPluginAsync {
  const { security, audit, clientAddress, metrics } = ctx;

  const answer = (user: UserRecord, issued: IssuedSession) => ({
    accessToken: issued.accessToken,
    role: user.role,
    refreshToken: issued.refreshToken,
    tokenType: 'Bearer' as const,
    expiresIn: issued.expiresIn,
  });
  /** A new session: a new refresh family. */
  const session = async (user: UserRecord) => answer(user, await security.families.start(user));

  /** Audits a sign-in, refresh or sign-out; the actor is the user name given or signed out, or anonymous for a refused refresh token (it named nobody we could trust). */
  const note = (request: FastifyRequest, action: string, userName: string | null, result: AuditResult, status: number, reason: string | null) =>
    audit.record(
      auditEvent(request, clientAddress, {
        actor: userName === null ? { kind: 'anonymous', id: null, role: null } : { kind: 'user', id: userName, role: null },
        action,
        service: null,
        result,
        status,
        reason,
      }),
    );

  /** 429 with Retry-After while the user name (when there is one) or the address has used its attempts. */
  const throttle = (request: FastifyRequest, reply: FastifyReply, action: string, userName: string | null, address: string): void => {
    const waitMs = Math.max(userName === null ? 0 : security.signinPerUser.retryAfterMs(userName), security.signinPerAddress.retryAfterMs(address));
    if (waitMs <= 0) return;
    const seconds = Math.ceil(waitMs / 1000);
    reply.header('retry-after', String(seconds));
    note(request, action, userName, 'denied', 429, 'too many attempts');
    throw new ApiError(429, 'LIMIT_EXCEEDED', `Too many attempts; try again in ${seconds} s.`);
  };

  return async (app) => {
    app.post(
      '/signin',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['maxine'],
          summary: 'Sign in with a user name and password',
          description: 'Answers the original\'s {accessToken, role} plus a refresh token. Limited per user name (failed attempts) and per address.',
          body: SigninBody,
          response: { 200: Session, ...errors },
        },
      },
      async (request, reply) => {
        const { userName, password } = request.body as Static<typeof SigninBody>;
        const address = clientAddress(request.raw);
        throttle(request, reply, 'signin', userName, address);
        security.signinPerAddress.record(address);
        const user = await security.users.check(userName, password);
        if (user === null) {
          security.signinPerUser.record(userName);
          metrics.signedIn(false);
          note(request, 'signin', userName, 'failed', 401, 'wrong user name or password');
          throw new ApiError(401, 'UNAUTHORIZED', 'Wrong user name or password.');
        }
        security.signinPerUser.forget(userName);
        metrics.signedIn(true);
        note(request, 'signin', userName, 'succeeded', 200, null);
        return session(user);
      },
    );

    /**
     * Refresh and sign-out take a refresh token as their credential. A refused
     * one spends the address's sign-in attempts (token guessing is a sign-in
     * by other means) and is audited. A replica that has not yet seen the
     * session's latest refresh answers a conflict to retry: the token is good.
     */
    const withRefreshToken = async <T>(request: FastifyRequest, reply: FastifyReply, action: string, use: () => Promise<T>): Promise<T> => {
      const address = clientAddress(request.raw);
      throttle(request, reply, action, null, address);
      try {
        return await use();
      } catch (error) {
        if (error instanceof RefreshFamilyLagError) {
          reply.header('retry-after', String(LAG_RETRY_AFTER_SEC));
          note(request, action, null, 'failed', 409, error.message);
          throw new ApiError(409, 'CONFLICT', error.message);
        }
        if (!(error instanceof AuthenticationError)) throw error;
        security.signinPerAddress.record(address);
        metrics.credentialsRefused();
        note(request, action, null, 'failed', 401, error.message);
        throw new ApiError(401, 'UNAUTHORIZED', error.message);
      }
    };

    app.post(
      '/refresh',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['maxine'],
          summary: 'Trade a refresh token for a new session',
          description:
            'Answers new access and refresh tokens of the same session; the refresh token presented is spent, and presenting a spent one revokes the session. ' +
            'Failed refreshes count against the sign-in attempts of the client address (429 beyond them) and are audited.',
          body: RefreshBody,
          response: { 200: Session, ...errors, 409: Type.Ref('Error') },
        },
      },
      async (request, reply) => {
        const { refreshToken } = request.body as Static<typeof RefreshBody>;
        return withRefreshToken(request, reply, 'refresh', async () => {
          const { user, session: issued } = await security.authenticator.refresh(refreshToken);
          return answer(user, issued);
        });
      },
    );

    app.post(
      '/signout',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['maxine'],
          summary: 'End the session a refresh token belongs to',
          description:
            "The session's refresh tokens stop working at once; its access tokens live until they expire. " +
            'Refused tokens count against the sign-in attempts of the client address (429 beyond them); every sign-out is audited.',
          body: RefreshBody,
          response: { 200: Type.Object({ message: Type.String() }), ...errors },
        },
      },
      async (request, reply) => {
        const { refreshToken } = request.body as Static<typeof RefreshBody>;
        const user = await withRefreshToken(request, reply, 'signout', () => security.authenticator.signOut(refreshToken));
        note(request, 'signout', user.userName, 'succeeded', 200, null);
        return { message: 'signed out' };
      },
    );

    app.put(
      '/change-password',
      {
        config: { permission: 'authenticated' },
        schema: {
          tags: ['maxine'],
          summary: "Change the signed-in user's password",
          description: 'Every token issued before the change stops working; the answer carries a new session.',
          body: ChangePasswordBody,
          response: { 200: Type.Object({ message: Type.String(), ...Session.properties }), ...errors, 403: Type.Ref('Error'), 409: Type.Ref('Error') },
        },
      },
      async (request, reply) => {
        const { principal } = request;
        if (principal.kind !== 'user') throw new ApiError(403, 'FORBIDDEN', 'Only users signed in with a password can change it.');
        const userName = principal.id!;
        const { password, newPassword } = request.body as Static<typeof ChangePasswordBody>;
        throttle(request, reply, 'change-password', userName, clientAddress(request.raw));
        if ((await security.users.check(userName, password)) === null) {
          security.signinPerUser.record(userName);
          throw ApiError.validation([{ field: 'password', problem: 'is not the current password' }]);
        }
        const user = await security.users.setPassword(userName, newPassword).catch(userProblem);
        return { message: 'successfully updated password', ...(await session(user)) };
      },
    );

    app.get(
      '/whoami',
      {
        config: { permission: 'authenticated' },
        schema: {
          tags: ['maxine'],
          summary: 'The principal the credentials stand for',
          response: {
            200: Type.Object({
              kind: Type.String(),
              id: Type.String(),
              role: Type.Union([Type.String(), Type.Null()]),
              groups: Type.Array(Type.String()),
              expiresAt: Type.Union([Type.String(), Type.Null()]),
            }),
            401: Type.Ref('Error'),
          },
        },
      },
      async (request) => {
        const { kind, id, role, groups, expiresAt } = request.principal;
        return { kind, id: id!, role, groups: [...groups], expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() };
      },
    );

    app.get(
      '/.well-known/jwks.json',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['maxine'],
          summary: 'Public keys of session tokens (empty when they are signed with a shared secret)',
          response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
        },
      },
      async () => security.keys().jwks,
    );
  };
}
