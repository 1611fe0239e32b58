/**
 * Calls enough for V8 to optimize `process.nextTick` (about 3,000 calls here;
 * this is several times that, about 20 ms once at start).
 */
const WARM_UP_CALLS = 20_000;

/**
 * Makes `process.nextTick` hot before the server starts up.
 *
 * Node's nextTick builds each tick as an object literal with symbol keys,
 * and V8 remembers the shape it saw at each of those keys; the first other
 * shape makes that memory "megamorphic" for good, and every later tick is
 * then built by a slow runtime call. Node's streams schedule several ticks
 * per HTTP request, so a server started without this warm-up came up in
 * that state about one start in seven (Node 20.20) and stayed about a fifth
 * slower per request for its whole life; started after it, none did
 * (docs/performance.md, "Slow processes"). Only `serve` pays for it: it runs
 * before the HTTP stack is loaded, since what happens during start-up is
 * what decides.
 */
export function warmUpNextTick(): void {
  const noop = (): void => {};
  for (let i = 0; i < WARM_UP_CALLS; i++) process.nextTick(noop);
}
