import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { FAMILY_ID } from './refresh-families.ts';
import type { KeyRing } from './signing-keys.ts';
import type { UserRecord } from './users.ts';

/** The `iss` and `aud` of Maxine's own session tokens. */
export const MAXINE_ISSUER = 'maxine';

type TokenType = 'access' | 'refresh';

export interface SessionSettings {
  /** Lifetime of an access token (MAXINE_JWT_EXPIRES_IN_SEC). */
  readonly accessTtlSec: number;
  /** Lifetime of a refresh token (MAXINE_JWT_REFRESH_EXPIRES_IN_SEC). */
  readonly refreshTtlSec: number;
}

export interface IssuedAccess {
  readonly accessToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
}

export interface IssuedSession extends IssuedAccess {
  readonly refreshToken: string;
  /** Epoch ms (whole seconds) when the refresh token expires: its family's record keeps it. */
  readonly refreshExpiresAt: number;
}

/** The refresh family a refresh token belongs to, and which of the family's tokens it is. */
export interface RefreshClaims {
  readonly family: string;
  readonly jti: string;
  /** The token's place in its family: 1 for the sign-in's, one more for each refresh. */
  readonly seq: number;
}

export interface VerifiedSession {
  readonly userName: string;
  /** The user's id: a user deleted and created again under the same name is somebody else. */
  readonly uid: string;
  /** The user's version when the token was issued; it must still be the current one. */
  readonly version: number;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** Epoch ms (whole seconds), by the issuing replica's clock; 0 for a token without `iat`. */
  readonly issuedAt: number;
}

export interface VerifiedRefresh extends VerifiedSession, RefreshClaims {}

/** Why a session token is refused; the message is safe to show and to log. */
export class SessionError extends Error {}

/** Small clock differences between replicas must not fail fresh tokens. */
const CLOCK_TOLERANCE_SEC = 5;

/** Maxine's own session tokens: JWTs signed with the key ring's current key, each with its kid. */
export class Sessions {
  constructor(
    private readonly keys: () => KeyRing,
    private readonly settings: SessionSettings,
  ) {}

  /** An access token, and a refresh token that is the token `refresh.jti` of the family `refresh.family`. */
  async issue(user: UserRecord, refresh: RefreshClaims): Promise<IssuedSession> {
    // Whole seconds, as in the token: the family's record keeps this very expiry.
    const refreshExp = Math.floor(Date.now() / 1000) + this.settings.refreshTtlSec;
    const [access, refreshToken] = await Promise.all([
      this.access(user),
      this.sign(user, { typ: 'refresh', fam: refresh.family, seq: refresh.seq }, refresh.jti, refreshExp),
    ]);
    return { ...access, refreshToken, refreshExpiresAt: refreshExp * 1000 };
  }

  /** An access token alone, for a credential renewed in place (a WebSocket's refresh_token). */
  async access(user: UserRecord): Promise<IssuedAccess> {
    const ttl = this.settings.accessTtlSec;
    const accessToken = await this.sign(user, { typ: 'access' }, randomUUID(), Math.floor(Date.now() / 1000) + ttl);
    return { accessToken, expiresIn: ttl };
  }

  async verifyAccess(token: string): Promise<VerifiedSession> {
    const { session } = await this.claims(token, 'access');
    return session;
  }

  async verifyRefresh(token: string): Promise<VerifiedRefresh> {
    const { session, payload } = await this.claims(token, 'refresh');
    // Refresh tokens issued before families existed carry none: they end with a sign-in.
    const seq = payload.seq;
    if (typeof payload.fam !== 'string' || !FAMILY_ID.test(payload.fam) || typeof payload.jti !== 'string' || !Number.isSafeInteger(seq) || (seq as number) < 1) {
      throw new SessionError('The session has ended; sign in again.');
    }
    return { ...session, family: payload.fam, jti: payload.jti, seq: seq as number };
  }

  private async claims(token: string, type: TokenType): Promise<{ session: VerifiedSession; payload: JWTPayload }> {
    const ring = this.keys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          const key = header.kid === undefined ? undefined : ring.byKid.get(header.kid);
          if (key === undefined || key.alg !== header.alg) throw new SessionError('The token was signed with a key Maxine does not know.');
          return key.key;
        },
        { issuer: MAXINE_ISSUER, audience: MAXINE_ISSUER, algorithms: [...ring.algorithms], clockTolerance: CLOCK_TOLERANCE_SEC, requiredClaims: ['exp', 'sub'] },
      ));
    } catch (error) {
      throw error instanceof SessionError ? error : new SessionError(reasonOf(error));
    }
    if (payload.typ !== type) throw new SessionError(`This is not ${type === 'access' ? 'an access' : 'a refresh'} token.`);
    if (!Number.isSafeInteger(payload.ver) || typeof payload.uid !== 'string') throw new SessionError('The token carries no credential version.');
    return { session: { userName: payload.sub!, uid: payload.uid, version: payload.ver as number, expiresAt: payload.exp! * 1000, issuedAt: (payload.iat ?? 0) * 1000 }, payload };
  }

  private sign(user: UserRecord, claims: { typ: TokenType; fam?: string; seq?: number }, jti: string, exp: number): Promise<string> {
    const { signer } = this.keys();
    // The role is informative only: every request reads the user's current role.
    return new SignJWT({ role: user.role, uid: user.uid, ver: user.version, ...claims })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(MAXINE_ISSUER)
      .setAudience(MAXINE_ISSUER)
      .setSubject(user.userName)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(signer.signingKey);
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired.';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is not valid.';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'The token uses an algorithm Maxine does not accept.';
  if (error instanceof errors.JWTClaimValidationFailed) return `The token's ${error.claim} claim is not acceptable.`;
  if (error instanceof errors.JOSEError) return 'The token is malformed.';
  return 'The token could not be verified.';
}
