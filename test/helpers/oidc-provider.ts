import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
// @ts-expect-error -- oidc-provider ships no type declarations and @types/oidc-provider is not installed.
import Provider from 'oidc-provider';

/**
 * A real OpenID provider (panva's oidc-provider) on a loopback port, for
 * end-to-end tests of external identities: the client-credentials grant,
 * JWT access tokens signed with ES256, and a `groups` claim per client.
 * Same setup as src/auth/oidc.test.ts, made reusable.
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
}

export interface TestOidcProvider {
  /** Exactly as it appears in the tokens' `iss`. */
  readonly issuer: string;
  /** A real access token from the token endpoint (client-credentials grant). */
  token(clientId: string, resource?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startOidcProvider(
  clients: Readonly<Record<string, OidcClientSpec>>,
  options: { accessTokenTtlSec?: number } = {},
): Promise<TestOidcProvider> {
  let callback: Handler = (_req, res) => res.writeHead(503).end();
  // The issuer must contain the port, so the server listens before the provider exists.
  const server: Server = createServer((req, res) => callback(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `key-${origin.split(':').at(-1)}`, alg: 'ES256', use: 'sig' };
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
      const groups = clients[token.clientId]?.groups;
      return groups === undefined ? undefined : { groups: [...groups] };
    },
    ttl: {
      ClientCredentials: (_ctx: unknown, token: { clientId: string }) => clients[token.clientId]?.accessTokenTtlSec ?? defaultTtl,
    },
  });
  callback = provider.callback();

  return {
    issuer: origin,
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
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
