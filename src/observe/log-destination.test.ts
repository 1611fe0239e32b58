import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { SwitchableLogDestination, type LogSwitches } from './log-destination.ts';

test('log lines follow the runtime switches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-log-'));
  try {
    const file = join(dir, 'out.log');
    let switches: LogSwitches = { logAsync: true, logFormat: 'JSON', logJsonPrettify: false };
    const destination = new SwitchableLogDestination(() => switches, openSync(file, 'a'));
    const logger = pino({ base: undefined }, destination);
    logger.info({ service: 'orders' }, 'first');
    switches = { logAsync: false, logFormat: 'PLAIN', logJsonPrettify: false };
    logger.warn({ port: 80, note: 'two words' }, 'second');
    switches = { logAsync: false, logFormat: 'JSON', logJsonPrettify: true };
    logger.info('third');
    destination.flush();
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(JSON.parse(lines[0]!).msg, 'first');
    assert.match(lines[1]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN second port=80 note="two words"$/);
    assert.equal(lines[2], '{', 'prettified JSON spans several lines');
    assert.ok(lines.some((l) => l.includes('"msg": "third"')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
