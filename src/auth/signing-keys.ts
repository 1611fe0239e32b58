import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { Catalog } from '../core/catalog.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import type { KvWriter } from './users.ts';

export type SigningAlgorithm = 'HS256' | 'ES256' | 'ES384' | 'RS256' | 'EdDSA';

export interface VerificationKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly key: KeyObject | Uint8Array;
}

/** The key new session tokens are signed with, and every key tokens may still be verified with. */
export interface KeyRing {
  readonly signer: VerificationKey & { readonly signingKey: KeyObject | Uint8Array };
  readonly byKid: ReadonlyMap<string, VerificationKey>;
  readonly algorithms: readonly SigningAlgorithm[];
  /** Public keys as a JWKS (empty for shared secrets, which must never be published). */
  readonly jwks: { readonly keys: readonly JWK[] };
}

export interface KeySettings {
  /** MAXINE_JWT_SECRET: HMAC secret new tokens are signed with. */
  readonly jwtSecret: string | undefined;
  /** MAXINE_JWT_PREVIOUS_SECRETS: secrets still accepted, for rotation. */
  readonly previousSecrets: readonly string[];
  /** MAXINE_JWT_PRIVATE_KEY_FILE: PEM private key (EC P-256/P-384, RSA or Ed25519) instead of a secret. */
  readonly privateKeyFile: string | undefined;
  /** MAXINE_JWT_PREVIOUS_PUBLIC_KEY_FILES: PEM public keys still accepted, for rotation. */
  readonly previousPublicKeyFiles: readonly string[];
}

/** A kid that names a secret without revealing anything about it. */
function secretKid(secret: string): string {
  return createHash('sha256').update(`maxine-jwt-kid:${secret}`).digest('hex').slice(0, 16);
}

function hmacKey(secret: string): VerificationKey {
  return { kid: secretKid(secret), alg: 'HS256', key: new TextEncoder().encode(secret) };
}

function algorithmOf(key: KeyObject, file: string): SigningAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
  }
  throw new Error(`${file}: unsupported key type (use EC P-256, EC P-384, RSA or Ed25519).`);
}

function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`);
  }
}

async function publicKey(key: KeyObject, file: string): Promise<{ verification: VerificationKey; jwk: JWK }> {
  const alg = algorithmOf(key, file);
  const jwk = await exportJWK(key);
  const kid = await calculateJwkThumbprint(jwk);
  return { verification: { kid, alg, key }, jwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** The key ring from configuration, or null when neither a secret nor a key file is configured. */
export async function configuredKeyRing(settings: KeySettings): Promise<KeyRing | null> {
  if (settings.jwtSecret !== undefined) {
    const signer = hmacKey(settings.jwtSecret);
    const all = [signer, ...settings.previousSecrets.map(hmacKey)];
    return { signer: { ...signer, signingKey: signer.key }, byKid: new Map(all.map((k) => [k.kid, k])), algorithms: ['HS256'], jwks: { keys: [] } };
  }
  if (settings.privateKeyFile === undefined) return null;
  const file = settings.privateKeyFile;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readPem(file));
  } catch (error) {
    throw new Error(`${file}: not a PEM private key (${(error as Error).message}).`);
  }
  const current = await publicKey(createPublicKey(privateKey), file);
  const previous = await Promise.all(
    settings.previousPublicKeyFiles.map((f) => {
      try {
        return publicKey(createPublicKey(readPem(f)), f);
      } catch (error) {
        throw new Error(`${f}: not a PEM public key (${(error as Error).message}).`);
      }
    }),
  );
  const all = [current, ...previous];
  return {
    signer: { ...current.verification, signingKey: privateKey },
    byKid: new Map(all.map((k) => [k.verification.kid, k.verification])),
    algorithms: [...new Set(all.map((k) => k.verification.alg))],
    jwks: { keys: all.map((k) => k.jwk) },
  };
}

function parseSecret(value: unknown): string | null {
  return typeof value === 'string' && value.length >= 32 ? value : null;
}

/**
 * Signing secrets Maxine made itself, for deployments that configure none.
 * They live in the store's KV so that every replica signs and verifies alike.
 * Replicas starting together may each add one; all are accepted, and every
 * replica signs with the one of lowest kid, so they agree once the feed has
 * delivered them all.
 */
export class GeneratedKeys {
  private readonly secrets: KvCollection<string>;
  private cached: { version: number; ring: KeyRing | null } = { version: -1, ring: null };

  constructor(
    catalog: Catalog,
    private readonly write: KvWriter,
    onWarning: (message: string) => void,
  ) {
    this.secrets = new KvCollection(catalog, `${SECURITY_KV_PREFIX}signing-keys/`, parseSecret, onWarning);
  }

  /** Adds a secret when the store has none yet. */
  async ensure(): Promise<void> {
    if (this.secrets.size > 0) return;
    const secret = randomBytes(32).toString('base64url');
    await this.write(this.secrets.keyOf(secretKid(secret)), JSON.stringify(secret));
  }

  ring(): KeyRing {
    if (this.cached.version !== this.secrets.version) this.cached = { version: this.secrets.version, ring: this.build() };
    const ring = this.cached.ring;
    if (ring === null) throw new Error('No signing key yet: GeneratedKeys.ensure() has not completed.');
    return ring;
  }

  close(): void {
    this.secrets.close();
  }

  private build(): KeyRing | null {
    const keys = [...this.secrets.values()].map(hmacKey).sort((a, b) => a.kid.localeCompare(b.kid));
    const signer = keys[0];
    if (signer === undefined) return null;
    return { signer: { ...signer, signingKey: signer.key }, byKid: new Map(keys.map((k) => [k.kid, k])), algorithms: ['HS256'], jwks: { keys: [] } };
  }
}
