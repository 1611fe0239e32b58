import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { ApiError, installErrorHandling } from './errors.ts';
import { installPermissions, type Permission } from './permissions.ts';

test('the server refuses to start when a route declares no permission', async () => {
  const app = Fastify();
  installPermissions(app, { authorize: () => undefined });
  app.get('/declared', { config: { permission: 'public' } }, async () => 'ok');
  app.get('/forgotten', async () => 'oops');
  await assert.rejects(async () => {
    await app.ready();
  }, /Routes without a declared permission: GET \/forgotten/);
});

test('the authorizer decides on the matched route permission, whatever the URL spelling', async () => {
  const seen: Permission[] = [];
  const app = Fastify();
  installErrorHandling(app, app.log);
  installPermissions(app, {
    authorize: (_request, permission) => {
      seen.push(permission);
      if (permission === 'config:write') throw new ApiError(403, 'FORBIDDEN', 'Forbidden');
    },
  });
  app.put('/api/maxine/control/config', { config: { permission: 'config:write' } }, async () => 'changed');
  await app.ready();
  const denied = await app.inject({ method: 'PUT', url: '/api/maxine/control/config' });
  assert.equal(denied.statusCode, 403);
  const upper = await app.inject({ method: 'PUT', url: '/API/maxine/control/config' });
  assert.equal(upper.statusCode, 404, 'a case variant matches no route and so reaches no handler');
  assert.deepEqual(seen, ['config:write', 'public']);
});
