import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { stronger, type Role } from './roles.ts';

export interface OidcSettings {
  /** The issuer URL exactly as it appears in tokens' `iss` claim. */
  readonly issuer: string;
  /** Required `aud` value. */
  readonly audience: string;
  /** JWKS location; null = discover it from `${issuer}/.well-known/openid-configuration` (its jwks_uri; the document's `issuer` must equal `issuer`). */
  readonly jwksUri: string | null;
  /** Tolerance for exp/nbf/iat, seconds. */
  readonly clockSkewSec: number;
  /** Claim holding the principal's groups (dotted path allowed, e.g. `realm_access.roles`); its value may be a string or an array of strings. */
  readonly groupsClaim: string;
  /** Group value -> Maxine role; a principal gets the strongest role any of its groups maps to, or null. */
  readonly roleMap: ReadonlyMap<string, Role>;
}

export interface OidcIdentity {
  /** `sub`, else `client_id` (client-credentials tokens may carry only client_id). */
  readonly subject: string;
  readonly groups: readonly string[];
  readonly role: Role | null;
  /** Epoch ms of `exp`; tokens without one are refused, since nothing would ever end their validity. */
  readonly expiresAt: number;
}

/** A bearer token that is not acceptable; `reason` is safe to show to the client and to log (never contains the token). */
export class OidcTokenError extends Error {
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'OidcTokenError';
    this.reason = reason;
  }
}

/**
 * Asymmetric only: HS* would need a secret shared with the provider, and
 * accepting it invites key confusion (a published public key used as the HMAC
 * secret by whoever forges the token).
 */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const DEFAULT_FETCH_TIMEOUT_MS = 5000;

// The detail (connection refused, HTTP status, ...) is kept in `cause` for the
// operator's log; the client only learns that the provider is the problem.
const UNREACHABLE = 'the identity provider could not be reached';

function unreachable(detail: string, cause?: unknown): OidcTokenError {
  return new OidcTokenError(`${UNREACHABLE} (${detail})`, { cause });
}

function claimReason(err: errors.JWTClaimValidationFailed): string {
  switch (err.claim) {
    case 'iss':
      return 'issuer mismatch';
    case 'aud':
      return 'audience mismatch';
    case 'nbf':
      return 'token not yet valid';
    default:
      return err.claim === 'exp' && err.reason === 'missing' ? 'token has no expiry' : `invalid "${err.claim}" claim`;
  }
}

function reasonFor(err: errors.JOSEError): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return claimReason(err);
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown signing key';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'ambiguous signing key';
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'unsupported algorithm';
  return 'malformed token';
}

/**
 * Follows a dotted path, but an exact claim name wins: providers such as Auth0
 * require namespaced claims like `https://example.com/groups`, whose dots are
 * not path separators.
 */
function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let value: unknown = payload;
  for (const part of path.split('.')) {
    // Own properties only, so a path like `__proto__.x` cannot reach Object.prototype.
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Anything else than a string or strings yields no groups, hence no role: a malformed claim must not grant access. */
function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  return [];
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Verifies bearer tokens issued by one external OpenID provider. */
export class OidcVerifier {
  readonly issuer: string;
  private readonly settings: OidcSettings;
  private readonly fetchTimeoutMs: number;
  /** Discovery in flight or done; reset on failure so that an outage at startup is not remembered forever. */
  private keySet: Promise<JWTVerifyGetKey> | null = null;

  constructor(settings: OidcSettings, options?: { fetchTimeoutMs?: number }) {
    this.settings = settings;
    this.issuer = settings.issuer;
    this.fetchTimeoutMs = options?.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    if (settings.jwksUri !== null) this.keySet = Promise.resolve(this.remoteKeySet(new URL(settings.jwksUri)));
  }

  claimsIssuer(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.issuer;
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<OidcIdentity> {
    // Refusing a foreign issuer before looking up its kid gives the accurate
    // reason, and spares a JWKS refetch for a key we could never have.
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new OidcTokenError('malformed token');
    }
    if (unverified.iss !== this.issuer) throw new OidcTokenError('issuer mismatch');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.resolveKey, {
        issuer: this.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        clockTolerance: this.settings.clockSkewSec,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof OidcTokenError) throw err;
      if (err instanceof errors.JOSEError) throw new OidcTokenError(reasonFor(err));
      throw err;
    }

    const subject = nonEmptyString(payload.sub) ?? nonEmptyString(payload.client_id);
    if (subject === null) throw new OidcTokenError('token names no subject');
    const groups = groupsOf(claimAt(payload, this.settings.groupsClaim));
    const role = groups.reduce<Role | null>((best, group) => stronger(best, this.settings.roleMap.get(group) ?? null), null);
    // requiredClaims made jose check that exp is present and numeric.
    return { subject, groups, role, expiresAt: (payload.exp as number) * 1000 };
  }

  /** Only called once the header's algorithm is allowed, so junk tokens never cause network traffic. */
  private readonly resolveKey: JWTVerifyGetKey = async (header, jws) => {
    const keys = await this.discoveredKeySet();
    try {
      return await keys(header, jws);
    } catch (err) {
      // Key selection verdicts are about the token; anything else is the fetch failing.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw unreachable('its key set is unavailable', err);
    }
  };

  private discoveredKeySet(): Promise<JWTVerifyGetKey> {
    if (this.keySet === null) {
      const pending = this.discover();
      this.keySet = pending;
      pending.catch(() => {
        if (this.keySet === pending) this.keySet = null;
      });
    }
    return this.keySet;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    // OpenID Connect Discovery 1.0 §4: a terminating slash is removed before appending.
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let document: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.fetchTimeoutMs), headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`discovery answered HTTP ${response.status}`);
      document = await response.json();
    } catch (err) {
      throw unreachable('discovery failed', err);
    }
    const doc = (typeof document === 'object' && document !== null ? document : {}) as Record<string, unknown>;
    // Discovery §4.3: a document for another issuer must not be trusted to name our keys.
    if (doc.issuer !== this.issuer) {
      throw unreachable('discovery failed', new Error(`discovery document names issuer ${JSON.stringify(doc.issuer)}, expected ${JSON.stringify(this.issuer)}`));
    }
    if (typeof doc.jwks_uri !== 'string' || !URL.canParse(doc.jwks_uri)) {
      throw unreachable('discovery failed', new Error('discovery document has no valid jwks_uri'));
    }
    return this.remoteKeySet(new URL(doc.jwks_uri));
  }

  private remoteKeySet(url: URL): JWTVerifyGetKey {
    return createRemoteJWKSet(url, { timeoutDuration: this.fetchTimeoutMs });
  }
}
