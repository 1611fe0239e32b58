import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

/** Which instance each of many client addresses is sent to by consistent hashing. */
async function picksByForwardedFor(maxine: TestMaxine, service: string): Promise<Set<string>> {
  const picked = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const res = await maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=${service}&format=json&strategy=CH`, undefined, {
      'x-forwarded-for': `203.0.113.${i}`,
    });
    assert.equal(res.status, 200);
    picked.add(res.json.nodeName);
  }
  return picked;
}

async function registerFive(maxine: TestMaxine, service: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const res = await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: '127.0.0.1',
      nodeName: `n${i}`,
      serviceName: service,
      port: 7000 + i,
      timeOut: 600,
    });
    assert.equal(res.status, 200);
  }
}

describe('hash key: query, header, client address and trustProxy', () => {
  let trusting: TestMaxine;
  let untrusting: TestMaxine;
  before(async () => {
    trusting = await startTestMaxine({ trustProxy: '127.0.0.1/8', hashKeyHeader: 'x-tenant' });
    untrusting = await startTestMaxine();
    await registerFive(trusting, 'hashed');
    await registerFive(untrusting, 'hashed');
  });
  after(async () => {
    await trusting.stop();
    await untrusting.stop();
  });

  test('X-Forwarded-For from a trusted proxy is the client address', async () => {
    assert.ok((await picksByForwardedFor(trusting, 'hashed')).size > 1, 'every forwarded client got the same instance');
  });

  test('X-Forwarded-For from an untrusted peer is ignored', async () => {
    assert.equal((await picksByForwardedFor(untrusting, 'hashed')).size, 1, 'a spoofed header moved the client');
  });

  test('the configured header and the key parameter take precedence, in that order', async () => {
    const pick = async (path: string, headers: Record<string, string>) =>
      (await trusting.call('GET', path, undefined, headers)).json.nodeName as string;
    const base = '/api/maxine/serviceops/discover?serviceName=hashed&format=json&strategy=CH';
    const byTenant = new Set<string>();
    for (let i = 0; i < 20; i++) byTenant.add(await pick(base, { 'x-tenant': `tenant-${i}`, 'x-forwarded-for': '203.0.113.1' }));
    assert.ok(byTenant.size > 1, 'the header did not change the key');
    const keyed = new Set<string>();
    for (let i = 0; i < 10; i++) keyed.add(await pick(`${base}&key=fixed`, { 'x-tenant': `tenant-${i}` }));
    assert.equal(keyed.size, 1, 'the key parameter must win over the header');
  });
});
