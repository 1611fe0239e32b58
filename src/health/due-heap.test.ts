import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DueHeap, type Due } from './due-heap.ts';

test('DueHeap pops in due order through random puts, moves and removals', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const heap = new DueHeap<Due & { id: number }>();
  const live = new Set<Due & { id: number }>();
  for (let round = 0; round < 2000; round++) {
    const r = random();
    if (r < 0.5 || live.size === 0) {
      const item = { id: round, due: Math.floor(random() * 1000), heapIndex: -1 };
      heap.put(item);
      live.add(item);
    } else if (r < 0.7) {
      const item = [...live][Math.floor(random() * live.size)]!;
      item.due = Math.floor(random() * 1000);
      heap.put(item);
    } else if (r < 0.85) {
      const item = [...live][Math.floor(random() * live.size)]!;
      heap.remove(item);
      assert.equal(item.heapIndex, -1);
      live.delete(item);
    } else {
      const top = heap.pop()!;
      assert.equal(top.due, Math.min(...[...live].map((i) => i.due)));
      live.delete(top);
    }
    assert.equal(heap.size, live.size);
  }
  let last = -Infinity;
  while (heap.size > 0) {
    const top = heap.pop()!;
    assert.ok(top.due >= last);
    last = top.due;
  }
});
