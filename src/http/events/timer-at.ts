/** Node's timers hold at most 2^31-1 ms (~24.8 days); longer delays fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Calls `fn` at epoch ms `at`, however far away; cancel() stops it. */
export function timerAt(at: number, fn: () => void, clock: () => number = Date.now): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = at - clock();
    timer = left > MAX_DELAY_MS ? setTimeout(arm, MAX_DELAY_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
