/**
 * Everything security keeps in the store's KV lives under this prefix: users,
 * service tokens, signing keys, ACL rules and the sessions' refresh families.
 * Nothing under it may leave a replica through an event stream or a KV
 * listing.
 */
export const SECURITY_KV_PREFIX = 'security/';

export function isSecurityKvKey(key: string): boolean {
  return key.startsWith(SECURITY_KV_PREFIX);
}
