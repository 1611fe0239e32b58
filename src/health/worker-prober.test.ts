import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testInstance } from '../core/fixtures.ts';
import type { HealthCheck } from '../core/instance.ts';
import { probeTarget } from './probe.ts';
import { closedPort, httpCheck, sleep, startUpstream, waitFor, type Upstream } from './test-upstreams.ts';
import { WorkerProber } from './worker-prober.ts';

const at = (port: number, check: HealthCheck) => probeTarget(testInstance('svc', `i${port}`, { port }), check);

describe('WorkerProber: probes run in a worker thread', () => {
  let ok: Upstream;
  let failing: Upstream;
  let hanging: Upstream;

  before(async () => {
    ok = await startUpstream({ kind: 'status', status: 200, body: 'all good' });
    failing = await startUpstream({ kind: 'status', status: 503 });
    hanging = await startUpstream({ kind: 'hang' });
  });
  after(async () => {
    await Promise.all([ok.close(), failing.close(), hanging.close()]);
  });

  test('verdicts are the Prober’s: pass, fail with the status, body match, refused connection', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    try {
      const check = httpCheck();
      const closed = await closedPort();
      const [pass, unavailable, matched, unmatched, refused] = await Promise.all([
        prober.probe(at(ok.port, check), check),
        prober.probe(at(failing.port, check), check),
        prober.probe(at(ok.port, httpCheck({ bodyMatch: 'good' })), httpCheck({ bodyMatch: 'good' })),
        prober.probe(at(ok.port, httpCheck({ bodyMatch: 'bad' })), httpCheck({ bodyMatch: 'bad' })),
        prober.probe(at(closed, check), check),
      ]);
      assert.deepEqual([pass.result, pass.reason], ['pass', 'HTTP 200']);
      assert.deepEqual([unavailable.result, unavailable.reason], ['fail', 'HTTP 503']);
      assert.equal(matched.result, 'pass');
      assert.deepEqual([unmatched.result, unmatched.reason], ['fail', 'body does not contain "bad"']);
      assert.deepEqual([refused.result, refused.reason], ['fail', 'connection refused']);
      assert.ok(pass.durationMs >= 0 && pass.durationMs < 2000);
    } finally {
      await prober.close();
    }
  });

  test('a timeout is the check’s, counted in the thread', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    try {
      const check = httpCheck({ timeoutMs: 150 });
      const outcome = await prober.probe(at(hanging.port, check), check);
      assert.deepEqual([outcome.result, outcome.reason], ['fail', 'timed out after 150 ms']);
      assert.ok(outcome.durationMs >= 140, `took ${outcome.durationMs} ms`);
    } finally {
      await prober.close();
    }
  });

  test('link-local addresses are refused in the thread too', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    try {
      const check = httpCheck();
      const target = probeTarget(testInstance('svc', 'meta', { host: '169.254.169.254', port: 80 }), check);
      const outcome = await prober.probe(target, check);
      assert.equal(outcome.result, 'fail');
      assert.match(outcome.reason, /link-local or metadata/);
    } finally {
      await prober.close();
    }
  });

  test('connections are kept alive between probes and reported by stats()', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    try {
      const check = httpCheck();
      const before = ok.connections;
      for (let i = 0; i < 5; i++) assert.equal((await prober.probe(at(ok.port, check), check)).result, 'pass');
      assert.equal(ok.connections - before, 1, 'one connection for five probes in a row');
      assert.deepEqual(prober.stats(), { sockets: 1, connects: 1 });
    } finally {
      await prober.close();
    }
    assert.equal(prober.stats().sockets, 0);
  });

  test('many probes at once all settle, each with its own result', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    try {
      const check = httpCheck();
      const ports = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? ok.port : failing.port));
      const outcomes = await Promise.all(ports.map((port) => prober.probe(at(port, check), check)));
      outcomes.forEach((outcome, i) => assert.equal(outcome.result, ports[i] === ok.port ? 'pass' : 'fail'));
    } finally {
      await prober.close();
    }
  });

  test('close() ends probes still running as "probe stopped", is idempotent, and later probes get the same answer', async () => {
    const prober = new WorkerProber({ allowLinkLocal: false });
    const check = httpCheck({ timeoutMs: 30_000 });
    const running = prober.probe(at(hanging.port, check), check);
    await waitFor(() => hanging.inFlight > 0, 5000, 'the probe to reach the upstream');
    const started = Date.now();
    await Promise.all([prober.close(), prober.close()]);
    assert.ok(Date.now() - started < 2500, 'close does not wait for the probe');
    assert.deepEqual(await running, { result: 'fail', reason: 'probe stopped', durationMs: 0 });
    assert.equal((await prober.probe(at(ok.port, check), check)).reason, 'probe stopped');
    await waitFor(() => hanging.inFlight === 0, 5000, 'the thread’s connection to close');
  });

  test('a thread that dies fails the probes it had and those of the next second; a probe after that starts a new thread', async () => {
    // The Prober refuses a negative keep-alive timeout: the thread throws as it starts, as a bug in it would.
    const prober = new WorkerProber({ allowLinkLocal: false, keepAliveTimeoutMs: -1 });
    try {
      const check = httpCheck();
      await assert.rejects(prober.probe(at(ok.port, check), check), /keepAliveTimeoutMs must be a positive integer/);
      // Within a second of the death no thread is started: the probe fails at once with the same cause.
      const started = Date.now();
      await assert.rejects(prober.probe(at(ok.port, check), check), /keepAliveTimeoutMs must be a positive integer/);
      assert.ok(Date.now() - started < 100, `failed in ${Date.now() - started} ms`);
      // After it, a new thread is tried (and dies the same way).
      await sleep(1100);
      const restarted = Date.now();
      await assert.rejects(prober.probe(at(ok.port, check), check), /keepAliveTimeoutMs must be a positive integer/);
      // Starting a thread (and loading the probe module in it) takes far longer than failing at once.
      assert.ok(Date.now() - restarted >= 50, `a new thread failed in only ${Date.now() - restarted} ms`);
    } finally {
      await prober.close();
    }
  });

  test('an idle prober does not keep its process alive; close() of one never used is immediate', async () => {
    const idle = new WorkerProber({ allowLinkLocal: false });
    await idle.close();
    // A process that probes once and never closes its prober must still exit by itself.
    const script = [
      `import { WorkerProber } from ${JSON.stringify(new URL('./worker-prober.ts', import.meta.url).href)};`,
      `import { probeTarget } from ${JSON.stringify(new URL('./probe.ts', import.meta.url).href)};`,
      `const check = ${JSON.stringify(httpCheck())};`,
      `const target = probeTarget({ scheme: 'http', host: '127.0.0.1', port: ${ok.port}, path: '', address: 'http://127.0.0.1:${ok.port}' }, check);`,
      'const outcome = await new WorkerProber({ allowLinkLocal: false }).probe(target, check);',
      'console.log(outcome.result);',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'maxine-prober-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'probe-once.mts');
    writeFileSync(file, script);
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = await Promise.race([once(child, 'exit').then(() => true), sleep(15_000).then(() => false)]);
    if (!exited) child.kill('SIGKILL');
    assert.ok(exited, 'the process exited on its own');
    assert.equal(output.trim(), 'pass');
  });
});
