import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
// @ts-expect-error -- oidc-provider ships no type declarations and @types/oidc-provider is not installed.
import Provider from 'oidc-provider';

/**
 * A real OpenID provider (panva's oidc-provider) on a loopback port, for
 * end-to-end tests of external identities: the client-credentials grant,
 * JWT access tokens signed with ES256, and a `groups` claim per client.
 * Shared by the unit tests of src/auth/oidc.ts and the end-to-end tests.
 *
 * Resources: `urn:maxine` (the default) gets tokens with audience `maxine`;
 * any other resource (e.g. `urn:billing`) gets audience `billing`, for
 * tokens meant for another API.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Every client's secret (client_secret_basic). */
export const OIDC_CLIENT_SECRET = 'a-client-secret-long-enough-for-the-provider';

export interface OidcClientSpec {
  /** The `groups` claim of its access tokens; omitted: no such claim. */
  readonly groups?: readonly string[];
  /** Its access tokens' lifetime, seconds; omitted: the provider's default. */
  readonly accessTokenTtlSec?: number;
  /** Further claims of its access tokens, beside `groups` (e.g. nested or namespaced group claims). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface TestOidcProvider {
  /** Exactly as it appears in the tokens' `iss`. */
  readonly issuer: string;
  /** The `kid` of the provider's one signing key. */
  readonly kid: string;
  /** A real access token from the token endpoint (client-credentials grant). */
  token(clientId: string, resource?: string): Promise<string>;
  /** Signs with the provider's own key: for tokens no real provider would issue, which must still be refused. */
  sign(claims: JWTPayload): Promise<string>;
  /** While down, every request is answered 503, as by a provider that is restarting. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startOidcProvider(
  clients: Readonly<Record<string, OidcClientSpec>>,
  options: { accessTokenTtlSec?: number } = {},
): Promise<TestOidcProvider> {
  let down = false;
  let callback: Handler = (_req, res) => res.writeHead(503).end();
  // The issuer must contain the port, so the server listens before the provider exists.
  const server: Server = createServer((req, res) => (down ? res.writeHead(503).end() : callback(req, res)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `key-${origin.split(':').at(-1)}`;
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const defaultTtl = options.accessTokenTtlSec ?? 600;

  const provider = new Provider(origin, {
    clients: Object.keys(clients).map((client_id) => ({
      client_id,
      client_secret: OIDC_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // The default (RS256) would need an RSA key; this provider only holds the ES256 one.
      id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: ['cookie-signing-key-for-tests'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:maxine',
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'registry',
          audience: resource === 'urn:maxine' ? 'maxine' : 'billing',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId: string }) => {
      const { groups, claims } = clients[token.clientId] ?? {};
      if (groups === undefined && claims === undefined) return undefined;
      return { ...claims, ...(groups === undefined ? {} : { groups: [...groups] }) };
    },
    ttl: {
      ClientCredentials: (_ctx: unknown, token: { clientId: string }) => clients[token.clientId]?.accessTokenTtlSec ?? defaultTtl,
    },
  });
  callback = provider.callback();

  return {
    issuer: origin,
    kid,
    async token(clientId, resource = 'urn:maxine') {
      const response = await fetch(`${origin}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${clientId}:${OIDC_CLIENT_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'registry' }),
      });
      const body = (await response.json()) as { access_token?: string };
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.ok(body.access_token);
      return body.access_token;
    },
    sign: (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey),
    setDown(value) {
      down = value;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
