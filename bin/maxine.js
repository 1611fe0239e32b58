#!/usr/bin/env node
// Runs the TypeScript sources directly, so `npx maxine` needs no build step.
import { register } from 'tsx/esm/api';

register();
// Imported dynamically: a static import would be evaluated before register().
await import('../src/cli/main.ts');
