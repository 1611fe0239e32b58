import type { TestContext } from 'node:test';
import type { RegistryStore, ReplicaOptions } from '../store.ts';

/**
 * How the conformance suite reaches one backend. Each backend's
 * `conformance.test.ts` describes itself with one of these and calls
 * `runStoreConformance`; the suite's tests are the same for every store.
 */
export interface ConformanceBackend {
  readonly name: string;
  /** Several replicas can open stores on one backend at once. */
  readonly shared: boolean;
  /** The backend expires leases itself (etcd): `expire()` has nothing to remove. */
  readonly backendExpires: boolean;
  /**
   * Smallest lease TTL the backend honours exactly, in ms (etcd leases are
   * whole seconds with a floor of about 2 s); expiry tests use at least this.
   */
  readonly minTtlMs: number;
  /**
   * Start the backend for one test (a fresh server, directory or key
   * prefix); stopped when the test ends. Null when the test was skipped.
   */
  start(t: TestContext): Promise<BackendUnderTest | null>;
}

export interface BackendUnderTest {
  /** A new, unopened store on this backend. The suite opens and closes it. */
  replica(options: ReplicaOptions): RegistryStore;
  /**
   * Make the history before the current revision unavailable (trim the
   * stream, compact etcd, delete old records), so that a replica behind it
   * must resync from a snapshot.
   */
  dropHistory(): Promise<void>;
}
