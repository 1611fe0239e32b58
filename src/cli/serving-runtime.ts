import { createHook } from 'node:async_hooks';
import { setFlagsFromString } from 'node:v8';

/**
 * Calls enough for V8 to optimize `process.nextTick` (about 3,000 calls here;
 * this is several times that, about 20 ms once at start).
 */
const WARM_UP_CALLS = 20_000;

/**
 * Prepares V8 for a long-running server, before `serve` loads the HTTP
 * stack: what happened during start-up decided, in some fresh processes, a
 * state that made every request slower for the process's whole life
 * (docs/performance.md, "Slow processes"). Only `serve` pays for it.
 */
export function prepareRuntimeForServing(): void {
  // First: the warm-up queues 20,000 ticks at once, all alive at any scavenge meanwhile.
  stopPretenuring();
  warmUpNextTick();
  keepATick();
}

/** The tick `keepATick` holds, so that the shapes of Node's ticks never die. */
let keptTick: object | undefined;

/**
 * Holds one of Node's tick objects for the process's life.
 *
 * Node's nextTick builds each tick with an object literal that remembers,
 * at each symbol key, the one object shape it saw there (`warmUpNextTick`),
 * and V8 holds that shape weakly. When a full collection runs while no tick
 * is alive, as when a server sits idle (V8's memory reducer collects then),
 * the shapes die with the last ticks; the next tick is built with a new
 * shape, and the literal, having remembered another, turns megamorphic for
 * good: every tick is then built by a runtime call, the slow state the
 * warm-up prevents at start-up, reached later instead. Measured: processes
 * started and left idle for ten seconds before their first requests came up
 * in it 6 times of 6, and 0 of 14 with a tick held. Node passes each new tick
 * to async hooks' `init`, which is how one is caught: a hook enabled around
 * a single nextTick call.
 */
function keepATick(): void {
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && keptTick === undefined) keptTick = resource;
    },
  }).enable();
  process.nextTick(() => {});
  hook.disable();
}

/**
 * Turns off V8's allocation-site pretenuring.
 *
 * V8 watches where objects are allocated, and when a scavenge finds nearly
 * all of a site's recent objects still alive, it decides, for good, that
 * the site's objects are born in the old generation. Start-up has such
 * moments, and when one fell on sites that every HTTP request uses (Node's
 * stream functions, with the ticks they schedule, and the fast lane's
 * headers), each request's short-lived objects were held by dead
 * old-generation objects that only a full collection clears: every scavenge
 * then promoted half or more of what it found, and the process spent twice
 * the CPU per request for its whole life. A server's long-lived data (the
 * catalog) is promoted by ordinary scavenges instead: measured no bigger
 * and no slower to restore.
 */
function stopPretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}

/**
 * Makes `process.nextTick` hot.
 *
 * Node's nextTick builds each tick as an object literal with symbol keys,
 * and V8 remembers the shape it saw at each of those keys; the first other
 * shape makes that memory "megamorphic" for good, and every later tick is
 * then built by a slow runtime call. Node's streams schedule several ticks
 * per HTTP request, so a server started without this warm-up came up in
 * that state about one start in seven (Node 20.20) and stayed about a fifth
 * slower per request for its whole life; started after it, none did.
 */
function warmUpNextTick(): void {
  const noop = (): void => {};
  for (let i = 0; i < WARM_UP_CALLS; i++) process.nextTick(noop);
}
