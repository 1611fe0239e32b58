import { isIP } from 'node:net';

/**
 * Addresses Maxine never registers, probes or forwards to unless the
 * operator allows it: link-local ranges, where cloud metadata services live
 * (169.254.169.254, AWS's fd00:ec2::254), and the metadata host names that
 * resolve there. A registry that forwards traffic to whatever is registered
 * would otherwise hand any registering client the instance's cloud
 * credentials.
 */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);

/** True for an IP literal in 169.254.0.0/16, fe80::/10 or fd00:ec2::254 (IPv4-mapped forms included). */
export function isLinkLocalOrMetadataIp(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 4) return bare.startsWith('169.254.');
  if (family !== 6) return false;
  const lower = bare.toLowerCase();
  const mapped = /^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!.startsWith('169.254.');
  const hex = mappedHex(lower);
  if (hex !== null) return hex.startsWith('169.254.');
  return /^fe[89ab][0-9a-f]?:/.test(lower) || expandIpv6(lower) === 'fd00:0ec2:0000:0000:0000:0000:0000:0254';
}

/** True for a host (IP literal or name) that must not be registered without MAXINE_ALLOW_LINK_LOCAL_REGISTRATION. */
export function isForbiddenHost(host: string): boolean {
  return isLinkLocalOrMetadataIp(host) || METADATA_NAMES.has(host.toLowerCase().replace(/\.$/, ''));
}

/** `::ffff:a9fe:a9fe` written in hex: the dotted IPv4 address, else null. */
function mappedHex(lower: string): string | null {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!m) return null;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The eight groups of an IPv6 address, four hex digits each (the address is known to be valid). */
function expandIpv6(lower: string): string {
  const [head, tail] = lower.includes('::') ? lower.split('::') : [lower, undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => g.padStart(4, '0')).join(':');
}
