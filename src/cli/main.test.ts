import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { Option } from 'commander';
import { CONFIG_SETTINGS, flagAttribute } from '../config/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'maxine-cli-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

// The test's own environment must not leak settings into the child.
const SETTING_VARIABLES = new Set(CONFIG_SETTINGS.flatMap((s) => s.env));
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SETTING_VARIABLES.has(name)));

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['bin/maxine.js', ...args], { cwd: ROOT, env: cleanEnv });
}

async function finished(child: ChildProcess): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': the child's output may still be in its pipes when it exits.
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  server.close();
  await once(server, 'close');
  return address.port;
}

async function waitUntilListening(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) assert.fail(`maxine exited with ${child.exitCode} before listening`);
    const socket = connect(port, '127.0.0.1');
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    socket.destroy();
    if (connected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`nothing listening on ${port}`);
}

test('every flag gives commander the attribute name loadConfig reads', () => {
  for (const s of CONFIG_SETTINGS) assert.equal(new Option(`${s.flag} <v>`).attributeName(), flagAttribute(s.flag));
});

describe('maxine serve', () => {
  test('--help lists every option with its variables, default and allowed values', async () => {
    const { code, stdout } = await finished(start(['serve', '--help']));
    assert.equal(code, 0);
    // Commander wraps descriptions; compare with whitespace collapsed.
    const help = stdout.replace(/\s+/g, ' ');
    for (const s of CONFIG_SETTINGS) {
      assert.ok(help.includes(` ${s.flag} <${s.kind.metavar}> `), `${s.flag} missing from help`);
      for (const name of s.env) assert.ok(help.includes(name), `${name} missing from help`);
      assert.ok(help.includes(s.kind.expected), `allowed values of ${s.flag} missing from help`);
    }
    assert.ok(help.includes('[default: 8080]'));
    assert.ok(help.includes('[default: round-robin]'));
  });

  test('an invalid value exits 2 with a message naming the setting and its allowed values', async () => {
    const { code, stdout, stderr } = await finished(start(['serve', '--port', '0x']));
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /--port \/ MAXINE_PORT \/ PORT: "0x" is not an integer from 1 to 65535/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  test('invalid environment values are all reported', async () => {
    const child = spawn(process.execPath, ['bin/maxine.js', 'serve'], {
      cwd: ROOT,
      env: { ...cleanEnv, MAXINE_FSYNC: 'sometimes', PORT: '99999' },
    });
    const { code, stderr } = await finished(child);
    assert.equal(code, 2);
    assert.match(stderr, /invalid configuration \(2 problems\)/);
    assert.match(stderr, /--fsync \/ MAXINE_FSYNC: "sometimes" is not one of always, interval, never/);
    assert.match(stderr, /"99999" is not an integer from 1 to 65535 \[from PORT\]/);
  });

  test('an unknown option is a usage error, exit 2', async () => {
    const { code, stderr } = await finished(start(['serve', '--prot', '80']));
    assert.equal(code, 2);
    assert.match(stderr, /unknown option '--prot'/);
  });

  test('a port in use exits 1 with one line saying so', async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const address = holder.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const args = ['serve', '--port', String(address.port), '--data-dir', join(dataDir, 'in-use'), '--log-level', 'silent'];
      const { code, stderr } = await finished(start(args));
      assert.equal(code, 1);
      // Only the last line: other modules' runtime warnings may also reach stderr.
      assert.equal(stderr.trimEnd().split('\n').at(-1), `maxine: cannot listen on 127.0.0.1:${address.port}: address already in use`);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    } finally {
      holder.close();
    }
  });

  test('SIGTERM shuts a running server down and exits 0', async () => {
    const port = await freePort();
    const child = start(['serve', '--port', String(port), '--data-dir', join(dataDir, 'sigterm')]);
    const outcome = finished(child);
    await waitUntilListening(port, child);
    child.kill('SIGTERM');
    const { code, stdout } = await outcome;
    assert.equal(code, 0);
    assert.equal(stdout.match(/shutting down/g)?.length, 1);
  });
});
