import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
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

export interface IssuedSession {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
}

export interface VerifiedSession {
  readonly userName: string;
  /** The user's id: a user deleted and created again under the same name is somebody else. */
  readonly uid: string;
  /** The user's version when the token was issued; it must still be the current one. */
  readonly version: number;
  /** Epoch ms. */
  readonly expiresAt: number;
}

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

  async issue(user: UserRecord): Promise<IssuedSession> {
    const [accessToken, refreshToken] = await Promise.all([
      this.sign(user, 'access', this.settings.accessTtlSec),
      this.sign(user, 'refresh', this.settings.refreshTtlSec),
    ]);
    return { accessToken, refreshToken, expiresIn: this.settings.accessTtlSec };
  }

  async verify(token: string, type: TokenType): Promise<VerifiedSession> {
    const ring = this.keys();
    let payload;
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
    return { userName: payload.sub!, uid: payload.uid, version: payload.ver as number, expiresAt: payload.exp! * 1000 };
  }

  private sign(user: UserRecord, type: TokenType, ttlSec: number): Promise<string> {
    const { signer } = this.keys();
    // The role is informative only: every request reads the user's current role.
    return new SignJWT({ role: user.role, uid: user.uid, ver: user.version, typ: type })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(MAXINE_ISSUER)
      .setAudience(MAXINE_ISSUER)
      .setSubject(user.userName)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${ttlSec}s`)
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
