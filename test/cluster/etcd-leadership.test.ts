import { ETCD } from './backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios(ETCD, 'leadership');
