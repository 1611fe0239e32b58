import { afterEach } from 'node:test';

/**
 * A factory whose every product is closed after the test that made it, so a
 * test that fails half-way leaves no timers or subscriptions behind.
 */
export function closedAfterEach<T extends { close(): void }>(make: () => T): () => T {
  let made: T[] = [];
  afterEach(() => {
    for (const item of made) item.close();
    made = [];
  });
  return () => {
    const item = make();
    made.push(item);
    return item;
  };
}
