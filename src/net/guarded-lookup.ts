import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isLinkLocalOrMetadataIp } from '../core/addresses.ts';

/**
 * A DNS lookup for every outgoing connection Maxine makes to an instance
 * (proxy, health probes): a registered name that resolves to a link-local
 * or cloud-metadata address is refused at connect time, so a DNS record
 * cannot reach what a literal address may not. With `allow` it is the
 * plain lookup.
 */
export function guardedLookup(allow: boolean): LookupFunction {
  if (allow) return dnsLookup as LookupFunction;
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const usable = addresses.filter((a) => !isLinkLocalOrMetadataIp(a.address));
      if (usable.length === 0) {
        const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves only to link-local or metadata addresses, which Maxine does not contact`);
        refused.code = 'EADDRNOTAVAIL';
        return callback(refused, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}
