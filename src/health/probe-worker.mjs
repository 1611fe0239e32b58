// The probe thread's entry. A worker thread does not inherit the main
// thread's TypeScript loader (tsx's hooks are per thread), so it registers
// its own before loading the TypeScript, as bin/maxine.js does.
import { register } from 'tsx/esm/api';

register();
await import('./probe-worker.ts');
