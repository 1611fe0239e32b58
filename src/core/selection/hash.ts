/**
 * Non-cryptographic 32-bit hashes for the hashing strategies.
 *
 * Every replica and every release must map a key to the same instance, so
 * these functions are part of the wire contract: changing them remaps every
 * key (hash.test.ts pins their values). They are not collision resistant;
 * keys come from clients, but a collision only co-locates two keys.
 */

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a over the string's UTF-16 code units (one step per unit, so no
 * encoding pass and no allocation), then murmur3's fmix32. FNV-1a alone
 * leaves the low bits depending only on the low bits of the input, and the
 * ring compares whole values; the finaliser gives every output bit a
 * dependency on every input bit. `seed` selects an independent-looking
 * function of the same string.
 */
export function hashString(s: string, seed = 0): number {
  let h = FNV_OFFSET_BASIS ^ seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return fmix32(h);
}

/** murmur3's 32-bit finaliser: a bijection with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * murmur3_x86_32 of three 32-bit words (seed 0). Combines already-hashed
 * values (a key hash with an instance's two id hashes, or an instance's id
 * hashes with a virtual node number) without building a string per call.
 */
export function hashWords3(a: number, b: number, c: number): number {
  let h = mixBlock(0, a);
  h = mixBlock(h, b);
  h = mixBlock(h, c);
  return fmix32(h ^ 12);
}

/**
 * Second seed for instance ids. Identities use two 32-bit hashes, because a
 * single 32-bit collision between two ids of one service would give them the
 * same ring points and rendezvous scores, and one of them would never be
 * picked for any key.
 */
export const ID_SEED_2 = 0x9e3779b9;
