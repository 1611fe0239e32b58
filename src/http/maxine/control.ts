import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { RUNTIME_KEYS } from '../../registry/runtime-config.ts';

const EnumValue = Type.Object({ name: Type.String(), code: Type.String(), message: Type.String(), ordinal: Type.Integer() });

const ConfigView = Type.Object({
  logAsync: Type.Boolean(),
  heartBeatTimeout: Type.Integer(),
  logJsonPrettify: Type.Boolean(),
  actuatorEnabled: Type.Boolean(),
  statusMonitorEnabled: Type.Boolean(),
  serverSelectionStrategy: EnumValue,
  discoveryMode: EnumValue,
  logFormat: EnumValue,
  port: Type.Integer(),
});

const Outcome = Type.Union([Type.Literal('Success'), Type.Literal('Type Error'), Type.Literal('Wrong value Or Invalid value')]);

/** The original's runtime configuration, shared by every replica through the store. */
export function controlRoutes(ctx: AppContext): FastifyPluginAsync {
  const { runtime, registry, config } = ctx;
  return async (app) => {
    app.get(
      '/config',
      {
        config: { permission: 'config:read' },
        schema: { tags: ['maxine'], summary: 'Read the runtime configuration', response: { 200: ConfigView } },
      },
      async () => {
        const settings = runtime.settings;
        return {
          logAsync: settings.logAsync,
          heartBeatTimeout: settings.heartBeatTimeout,
          logJsonPrettify: settings.logJsonPrettify,
          actuatorEnabled: true,
          statusMonitorEnabled: false,
          ...runtime.describe(),
          port: config.port,
        };
      },
    );

    app.put(
      '/config',
      {
        config: { permission: 'config:write' },
        schema: {
          tags: ['maxine'],
          summary: 'Change runtime settings; the answer gives each supplied key its outcome',
          body: Type.Object(
            Object.fromEntries(RUNTIME_KEYS.map((key) => [key, Type.Optional(Type.Unknown())])),
            { description: 'any subset of the keys; unknown keys are ignored, as in the original' },
          ),
          response: {
            200: Type.Object(Object.fromEntries(RUNTIME_KEYS.map((key) => [key, Type.Optional(Outcome)]))),
            400: Type.Ref('Error'),
            503: Type.Ref('Error'),
          },
        },
      },
      async (request) => {
        const { outcomes, writes } = runtime.validate(request.body as Record<string, unknown>);
        for (const [key, value] of writes) await registry.putKv(key, value);
        return outcomes;
      },
    );
  };
}
