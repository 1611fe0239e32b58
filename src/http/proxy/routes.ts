import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { LIMITS } from '../../core/validation.ts';
import { serviceIn } from '../permissions.ts';
import type { AppContext } from '../context.ts';
import { checkedUpstreamPath, forwardToService, policyPick } from './forwarding.ts';

const ServiceParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }) });

/**
 * `ALL <prefix>/:serviceName/*`: forwards the request to an instance of the
 * service. Mounted at /api/maxine/serviceops/proxy and, for the Lightning
 * routes, at /proxy. Bodies are not parsed here: the proxy streams them.
 */
export function proxyRoutes(ctx: AppContext, prefix: string, tag: string): FastifyPluginAsync {
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const handler = (withPath: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
      const { serviceName } = request.params as Static<typeof ServiceParams>;
      const url = request.raw.url ?? '/';
      const queryAt = url.indexOf('?');
      const path = queryAt < 0 ? url : url.slice(0, queryAt);
      // After `<prefix>/<service>`: the service segment ends at the next '/'.
      const afterPrefix = path.slice(prefix.length + 1);
      const slash = afterPrefix.indexOf('/');
      const rest = withPath && slash >= 0 ? afterPrefix.slice(slash) : '/';
      const upstreamPath = checkedUpstreamPath(rest) + (queryAt < 0 ? '' : url.slice(queryAt));
      await forwardToService(ctx, request, reply, serviceName, upstreamPath, policyPick(ctx, request, serviceName));
    };
    const schema = {
      tags: [tag],
      summary: 'Forward the request to a healthy instance of the service',
      description:
        "Method, path after the service name, query and body are forwarded to the instance the service's strategy picks; the answer streams back. 503 when no instance is eligible, 502 when the instance cannot be reached or answers badly, 504 when it times out.",
      params: ServiceParams,
    };
    app.all('/:serviceName', { config: { permission: 'proxy', service: serviceIn.params(), audit: false, forwardsCredentials: true }, schema }, handler(false));
    app.all('/:serviceName/*', { config: { permission: 'proxy', service: serviceIn.params(), audit: false, forwardsCredentials: true }, schema: { ...schema, params: Type.Object({ ...ServiceParams.properties, '*': Type.String() }) } }, handler(true));
  };
}
