import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnMaxine } from '../helpers/process.ts';

/** Clients register, heartbeat and discover without credentials, as the original's do. */
const AS_CLIENT = { authorization: '' };

const dataDir = mkdtempSync(join(tmpdir(), 'maxine-crash-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('kill -9 under a stream of registrations loses nothing that was acknowledged', async () => {
  const first = await spawnMaxine(['--data-dir', dataDir, '--log-level', 'warn']);
  const acknowledged: { serviceName: string; nodeName: string; at: number }[] = [];
  let killedAt = Infinity;
  let next = 0;
  const writer = async () => {
    while (killedAt === Infinity) {
      const n = next++;
      const body = { hostName: '127.0.0.1', nodeName: `n${n}`, serviceName: `svc-${n % 50}`, port: 1000 + (n % 60000), timeOut: 3600 };
      try {
        const res = await first.call('POST', '/api/maxine/serviceops/register', body, AS_CLIENT);
        if (res.status === 200) acknowledged.push({ serviceName: body.serviceName, nodeName: body.nodeName, at: Date.now() });
      } catch {
        return; // The connection died with the process.
      }
    }
  };
  const writers = Array.from({ length: 8 }, writer);
  await new Promise((r) => setTimeout(r, 1500));
  first.child.kill('SIGKILL');
  killedAt = Date.now();
  await Promise.all(writers);
  assert.equal(await first.exited, 'SIGKILL');
  assert.ok(acknowledged.length > 100, `only ${acknowledged.length} registrations were acknowledged`);

  const second = await spawnMaxine(['--data-dir', dataDir, '--log-level', 'warn']);
  try {
    const { json } = await second.call('GET', '/api/maxine/serviceops/servers?format=v2');
    const present = new Set<string>();
    for (const service of json.services) for (const i of service.instances) present.add(`${i.serviceName}/${i.nodeName}`);
    // Acknowledgement means the record reached the operating system, so every one survives a process kill.
    const lost = acknowledged.filter((a) => !present.has(`${a.serviceName}/${a.nodeName}`));
    console.log(`acknowledged ${acknowledged.length}, restored ${present.size}, lost ${lost.length}`);
    assert.deepEqual(lost, []);
  } finally {
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.output());
  }
});

test('leases that lapsed while Maxine was down are dropped on restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-lapse-'));
  try {
    const first = await spawnMaxine(['--data-dir', dir, '--log-level', 'warn']);
    const reg = (nodeName: string, timeOut: number) =>
      first.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', nodeName, serviceName: 'lapse', timeOut }, AS_CLIENT);
    assert.equal((await reg('short', 1)).status, 200);
    assert.equal((await reg('long', 3600)).status, 200);
    first.child.kill('SIGKILL');
    await first.exited;
    await new Promise((r) => setTimeout(r, 1200));
    const second = await spawnMaxine(['--data-dir', dir, '--log-level', 'warn']);
    try {
      const { json } = await second.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=lapse');
      assert.deepEqual(json.services[0].instances.map((i: any) => i.nodeName), ['long']);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second Maxine on the same data directory refuses to start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-twice-'));
  try {
    const first = await spawnMaxine(['--data-dir', dir, '--log-level', 'warn']);
    try {
      await assert.rejects(spawnMaxine(['--data-dir', dir, '--log-level', 'warn']), /in use by process \d+/);
    } finally {
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
