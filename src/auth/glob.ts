/**
 * Service-name patterns in ACL rules and token scopes: `*` matches any run of
 * characters (including none); everything else matches itself. Service names
 * cannot contain `*`, so there is nothing to escape on the name side.
 */
export type NamePattern = (name: string) => boolean;

const ANY: NamePattern = () => true;

export function compilePattern(pattern: string): NamePattern {
  if (pattern === '*') return ANY;
  if (!pattern.includes('*')) return (name) => name === pattern;
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 's');
  return (name) => regex.test(name);
}

/** Patterns as written in rules: 1 to 200 characters of service-name characters and `*`. */
export const PATTERN_SOURCE = '^[A-Za-z0-9._*-]{1,200}$';
