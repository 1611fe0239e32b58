import { REDIS } from './backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios(REDIS, 'leadership');
