import { ConsecutiveBreaker, circuitBreaker, handleType, handleWhen, isBrokenCircuitError, retry } from 'cockatiel';
import { Etcd3, GRPCUnavailableError, isRecoverableError } from 'etcd3';

/**
 * The etcd3 client as the store uses it. etcd3 wraps every unary call in two
 * cockatiel policies; their defaults (three retries, a breaker that stays
 * open five seconds, no deadline) make a call against a dead cluster hang or
 * fail late. Here a call fails within CALL_TIMEOUT_MS, so writes answer 503
 * quickly, and the store's own loops (feed, election, keep-alives) do the
 * retrying.
 */

/** The longest one unary etcd call may take. */
export const CALL_TIMEOUT_MS = 1000;

export function createClient(endpoints: readonly string[]): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    faultHandling: {
      // A member that failed twice in a row is skipped for a second, so calls
      // go straight to the others instead of waiting on it.
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(2) }),
      // One retry, on another member, and only when the call could not reach
      // a member. A call that timed out may have been applied, so it is not
      // repeated.
      global: retry(handleType(GRPCUnavailableError), { maxAttempts: 1 }),
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
    grpcOptions: {
      // Notices a member that stopped answering (frozen, or cut off) under an
      // open watch; etcd refuses pings more often than every 5 s.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // A watch catching up sends up to 1000 revisions in one message, which
      // can exceed gRPC's 4 MiB default with large metadata; a message that is
      // refused would be refused again on every reconnect.
      'grpc.max_receive_message_length': -1,
    },
  });
}

/** Call options that end a call at `deadline` (epoch ms) or after CALL_TIMEOUT_MS, whichever is first. */
export function until(deadline: number, callTimeoutMs = CALL_TIMEOUT_MS): { deadline: number } {
  return { deadline: Math.min(Date.now() + callTimeoutMs, deadline) };
}

export function describe(error: unknown): string {
  if (isBrokenCircuitError(error)) return 'no etcd member answered the last calls (the next try goes out within a second)';
  return error instanceof Error ? error.message : String(error);
}

/** etcd no longer has (compacted), or does not have yet, the revision asked for. */
export function isUnavailableRevision(error: unknown): boolean {
  const message = describe(error);
  return message.includes('required revision has been compacted') || message.includes('required revision is a future revision');
}
