import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startTestMaxine } from '../helpers/maxine.ts';
import { spawnMaxine } from '../helpers/process.ts';

const ANONYMOUS = { authorization: '' };

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('/healthz answers while the process runs; /readyz follows whether the catalog can be caught up with the store', async () => {
  const root = mkdtempSync(join(tmpdir(), 'maxine-readyz-'));
  const shared = join(root, 'registry');
  const away = join(root, 'away');
  const maxine = await startTestMaxine({ registryStateMode: 'shared-file', registryStateFile: shared });
  after(() => rmSync(root, { recursive: true, force: true }));
  try {
    const live = await maxine.call('GET', '/healthz', undefined, ANONYMOUS);
    assert.deepEqual([live.status, live.json], [200, { status: 'ok' }]);
    const ready = await maxine.call('GET', '/readyz', undefined, ANONYMOUS);
    assert.equal(ready.status, 200);
    assert.equal(ready.json.status, 'ready');
    assert.equal(ready.json.store.kind, 'shared-file');

    // The shared directory disappears (an unmounted volume): not ready, but still alive.
    renameSync(shared, away);
    const down = await until(async () => {
      const res = await maxine.call('GET', '/readyz', undefined, ANONYMOUS);
      return res.status === 503 ? res : undefined;
    }, 'readiness to fail');
    assert.equal(down.json.status, 'not ready');
    assert.equal(down.json.store.reachable, false);
    assert.equal((await maxine.call('GET', '/healthz', undefined, ANONYMOUS)).status, 200);

    renameSync(away, shared);
    await until(async () => ((await maxine.call('GET', '/readyz', undefined, ANONYMOUS)).status === 200 ? true : undefined), 'readiness to return');
  } finally {
    await maxine.stop();
  }
});

test("the original's log routes serve this replica's recent lines to admins", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maxine-logs-'));
  const maxine = await spawnMaxine(['--data-dir', dataDir, '--log-level', 'info']);
  try {
    const recent = await maxine.call('GET', '/api/logs/recent');
    assert.equal(recent.status, 200);
    assert.match(recent.json.logs, /maxine listening/);

    const download = await maxine.call('GET', '/api/logs/download');
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-disposition') ?? '', /attachment/);
    assert.match(download.text, /maxine listening/);

    assert.equal((await maxine.call('GET', '/api/logs/recent', undefined, ANONYMOUS)).status, 401);
    const created = await maxine.call('POST', '/api/maxine/users', { userName: 'vera', password: 'vera-password', role: 'viewer' });
    assert.equal(created.status, 201);
    const viewer = await maxine.call('POST', '/api/maxine/signin', { userName: 'vera', password: 'vera-password' }, ANONYMOUS);
    assert.equal((await maxine.call('GET', '/api/logs/recent', undefined, { authorization: `Bearer ${viewer.json.accessToken}` })).status, 403);

    const cleared = await maxine.call('GET', '/api/logs/recent/clear');
    assert.equal(cleared.status, 200);
    assert.doesNotMatch((await maxine.call('GET', '/api/logs/recent')).json.logs, /maxine listening/);
    const audit = (await maxine.call('GET', '/api/actuator/audit?actor=admin')).json.events;
    assert.ok(audit.some((e: { action: string; route: string }) => e.action === 'logs:manage' && e.route === '/api/logs/recent/clear'));
  } finally {
    maxine.child.kill('SIGTERM');
    await maxine.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});
