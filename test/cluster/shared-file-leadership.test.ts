import { SHARED_FILE } from './backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios(SHARED_FILE, 'leadership');
