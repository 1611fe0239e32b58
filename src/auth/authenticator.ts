import { decodeJwt } from 'jose';
import type { OidcVerifier } from './oidc.ts';
import { ANONYMOUS, certificatePrincipal, type Principal } from './principal.ts';
import { ServiceTokens, ServiceTokenError, TOKEN_PREFIX } from './service-tokens.ts';
import { RefreshFamilyError, type RefreshFamilies } from './refresh-families.ts';
import { MAXINE_ISSUER, SessionError, type IssuedSession, type Sessions, type VerifiedRefresh } from './sessions.ts';
import type { UserRecord, Users } from './users.ts';

/** Credentials were presented and are not acceptable: a 401, whatever the route. */
export class AuthenticationError extends Error {}

/**
 * The Authorization header holds no credential of Maxine's (another scheme,
 * not a JWT, a JWT from an issuer Maxine does not trust). A 401 too, except
 * on the proxy routes, where such a header belongs to the upstream service.
 */
export class UnrecognizedCredentialError extends AuthenticationError {}

export interface AuthenticatorParts {
  readonly sessions: Sessions;
  readonly users: Users;
  readonly serviceTokens: ServiceTokens;
  readonly families: RefreshFamilies;
  /** Present when an external OIDC issuer is configured. */
  readonly oidc: OidcVerifier | null;
}

const BEARER = /^Bearer +([^\s]+) *$/i;

/**
 * Turns a request's credentials into a principal: a bearer token (Maxine's
 * own session token, a service token, or an OIDC token from the configured
 * issuer) or else a verified client certificate, else anonymous.
 */
export class Authenticator {
  constructor(private readonly parts: AuthenticatorParts) {}

  async authenticate(authorization: string | undefined, certificateSubject: string | null): Promise<Principal> {
    if (authorization === undefined) {
      return certificateSubject === null ? ANONYMOUS : certificatePrincipal(certificateSubject);
    }
    const match = BEARER.exec(authorization);
    if (match === null) throw new UnrecognizedCredentialError('Send credentials as "Authorization: Bearer <token>".');
    const token = match[1]!;
    if (token.startsWith(TOKEN_PREFIX)) return this.serviceToken(token);
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new UnrecognizedCredentialError('The bearer token is malformed.');
    }
    if (issuer === MAXINE_ISSUER) return this.session(token);
    const { oidc } = this.parts;
    if (oidc !== null && oidc.claimsIssuer(token)) return this.external(oidc, token);
    throw new UnrecognizedCredentialError('The bearer token comes from an issuer Maxine does not trust.');
  }

  /** Spends a refresh token for the next tokens of its session; a spent one revokes the session. */
  async refresh(token: string): Promise<{ user: UserRecord; session: IssuedSession }> {
    const { refresh, user } = await this.refreshToken(token);
    return { user, session: await this.parts.families.rotate(refresh, user).catch(refused) };
  }

  /** Ends the session a refresh token belongs to; resolves to the session's user. */
  async signOut(token: string): Promise<UserRecord> {
    const { refresh, user } = await this.refreshToken(token);
    await this.parts.families.end(refresh).catch(refused);
    return user;
  }

  private async refreshToken(token: string): Promise<{ refresh: VerifiedRefresh; user: UserRecord }> {
    const refresh = await this.parts.sessions.verifyRefresh(token).catch((error: unknown) => {
      throw new AuthenticationError(error instanceof SessionError ? error.message : 'The refresh token is not valid.');
    });
    return { refresh, user: this.currentUser(refresh.userName, refresh.uid, refresh.version) };
  }

  private serviceToken(token: string): Principal {
    try {
      return this.parts.serviceTokens.authenticate(token);
    } catch (error) {
      throw new AuthenticationError(error instanceof ServiceTokenError ? error.message : 'The service token is not valid.');
    }
  }

  private async session(token: string): Promise<Principal> {
    const session = await this.parts.sessions.verifyAccess(token).catch((error: unknown) => {
      throw new AuthenticationError(error instanceof SessionError ? error.message : 'The token is not valid.');
    });
    const user = this.currentUser(session.userName, session.uid, session.version);
    return { kind: 'user', id: user.userName, role: user.role, groups: [], grants: [], expiresAt: session.expiresAt };
  }

  /** Tokens of deleted users, and tokens issued before a password or role change, stop here. */
  private currentUser(userName: string, uid: string, version: number): UserRecord {
    const user = this.parts.users.get(userName);
    if (user === undefined) throw new AuthenticationError('The token belongs to a user who no longer exists.');
    if (user.uid !== uid) throw new AuthenticationError('The token belongs to a user who no longer exists.');
    if (user.version !== version) throw new AuthenticationError("The token predates a change of the user's password or role; sign in again.");
    return user;
  }

  private async external(oidc: OidcVerifier, token: string): Promise<Principal> {
    try {
      const identity = await oidc.verify(token);
      return { kind: 'oidc', id: identity.subject, role: identity.role, groups: identity.groups, grants: [], expiresAt: identity.expiresAt };
    } catch (error) {
      throw new AuthenticationError(`The OIDC token is not valid: ${(error as { reason?: string }).reason ?? 'verification failed'}.`);
    }
  }
}

/** A session that ended or was revoked is a refused credential; anything else (the store, a lagging replica) passes through. */
function refused(error: unknown): never {
  throw error instanceof RefreshFamilyError ? new AuthenticationError(error.message) : error;
}
