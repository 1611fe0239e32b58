/**
 * Present (value "true") on every response while the store's backend is
 * unreachable: reads still come from the last known catalog. Set by the
 * app's onRequest hook and by the fast lane.
 */
export const STALE_HEADER = 'x-maxine-stale';
