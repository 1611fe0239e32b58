import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const outputDir = mkdtempSync(join(tmpdir(), 'maxine-runtime-'));
after(() => rmSync(outputDir, { recursive: true, force: true }));

/**
 * A process that ticks, goes quiet (full collections with no tick alive, as
 * V8's memory reducer runs them on an idle server), ticks again, then prints
 * V8's view of `process.nextTick`, whose feedback shows each slot's state.
 */
const IDLE_THEN_BUSY = `
  if (process.argv[1] === 'prepared') (await import('./src/cli/serving-runtime.ts')).prepareRuntimeForServing();
  const noop = () => {};
  const tick = async () => {
    for (let i = 0; i < 20000; i++) {
      process.nextTick(noop);
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await tick();
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 3; i++) gc();
  await tick();
  eval('%DebugPrint(process.nextTick)');
`;

/** The states of the feedback slots of nextTick's tick literal (its symbol and named keys), as V8 prints them. */
async function tickLiteralSlots(prepared: boolean): Promise<string[]> {
  // V8 prints through C's stdio, which loses output on a non-blocking pipe: the child writes to a file.
  const file = join(outputDir, prepared ? 'prepared.txt' : 'plain.txt');
  const fd = openSync(file, 'w');
  try {
    const child = spawn(
      process.execPath,
      ['--allow-natives-syntax', '--expose-gc', '--import', 'tsx', '--input-type=module', '--eval', IDLE_THEN_BUSY, prepared ? 'prepared' : 'plain'],
      { cwd: ROOT, stdio: ['ignore', fd, 'inherit'] },
    );
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, 'the probe failed');
  } finally {
    closeSync(fd);
  }
  return [...readFileSync(file, 'utf8').matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]!);
}

describe('the serving runtime', () => {
  test('without it, a full collection with no tick alive turns the tick literal megamorphic (the probe sees the state)', async () => {
    const slots = await tickLiteralSlots(false);
    assert.ok(slots.length > 0, 'V8 printed no feedback for the tick literal');
    assert.ok(
      slots.includes('MEGAMORPHIC'),
      `expected a megamorphic slot, got ${slots.join(', ')} (if this Node's V8 no longer does this, the held tick may no longer be needed)`,
    );
  });

  test('with it, the tick literal stays monomorphic through the same quiet spell', async () => {
    const slots = await tickLiteralSlots(true);
    assert.ok(slots.length > 0, 'V8 printed no feedback for the tick literal');
    assert.deepEqual(
      slots.filter((state) => state !== 'MONOMORPHIC'),
      [],
      `every slot should stay monomorphic, got ${slots.join(', ')}`,
    );
  });
});
