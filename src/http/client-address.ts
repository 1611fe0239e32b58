import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { TrustProxy } from '../config/kinds.ts';

export type ClientAddress = (req: IncomingMessage) => string;

/**
 * The client's address for hashing, honouring `trustProxy`: X-Forwarded-For
 * entries are believed only as far as the trusted proxies reach. A hop count
 * trusts that many nearest peers whatever their address (proxy-addr's
 * meaning), so it suits a Maxine reachable only through those proxies.
 */
export function clientAddressResolver(trustProxy: TrustProxy): ClientAddress {
  if (trustProxy === false) return (req) => req.socket.remoteAddress ?? '';
  const trust =
    trustProxy === true
      ? () => true
      : typeof trustProxy === 'number'
        ? (_address: string, hop: number) => hop < trustProxy
        : proxyAddr.compile(trustProxy);
  return (req) => proxyAddr(req, trust);
}
