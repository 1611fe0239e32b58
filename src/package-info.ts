import { readFileSync } from 'node:fs';

/** This package's name, version and description, read once from package.json. */
export const PACKAGE_INFO = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  readonly name: string;
  readonly version: string;
  readonly description: string;
};
