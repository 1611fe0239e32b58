import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { installPermissions } from './permissions.ts';

test('the server refuses to start when a route declares no permission', async () => {
  const app = Fastify();
  installPermissions(app);
  app.get('/declared', { config: { permission: 'public' } }, async () => 'ok');
  app.get('/forgotten', async () => 'oops');
  await assert.rejects(async () => {
    await app.ready();
  }, /Routes without a declared permission: GET \/forgotten/);
});

test('the route table lists every method of every route with its permission', async () => {
  const app = Fastify();
  const table = installPermissions(app);
  app.get('/a', { config: { permission: 'registry:read' } }, async () => 'ok');
  app.route({ method: ['PUT', 'DELETE'], url: '/b/:serviceName', config: { permission: 'config:write', service: () => 'x' }, handler: async () => 'ok' });
  await app.ready();
  assert.deepEqual(
    table.map((r) => `${r.method} ${r.url} ${r.permission} ${r.touchesService}`),
    ['GET /a registry:read false', 'HEAD /a registry:read false', 'PUT /b/:serviceName config:write true', 'DELETE /b/:serviceName config:write true'],
  );
});
