import { Buffer } from 'node:buffer';
import { Compile } from 'typebox/compile';
import type { Instance, InstanceKey } from '../core/instance.ts';
import type { AppContext } from './context.ts';
import { checkDiscovery, type CheckedDiscovery } from './discovery.ts';
import { errorJson } from './errors.ts';
import { LIGHTNING_SUCCESS, LightningDiscoverQuery, lightningDiscovery, lightningNode, lightningUnavailable, nodeKey, NodeRef } from './lightning/routes.ts';
import { DiscoverQuery, discoverRequest, discoverUnavailable, isProxied } from './maxine/discover-request.ts';
import { heartbeatAnswer, InstanceRef, instanceKey } from './maxine/instance-key.ts';
import { instanceJsonBytes, oncePerInstance } from './views.ts';

/*
 * The routes the fast lane (fast-lane.ts) answers, each read and answered
 * through the functions its route uses, so that both give the same answer.
 * Answers are bytes, built once (per instance version where they name one):
 * node:http sends a Buffer as it is.
 */

/** A discover as the fast lane answers it: checked, and how each outcome is written. */
export interface LaneDiscover {
  readonly discovery: CheckedDiscovery;
  /** Left to the route (the proxy answers it). */
  proxied(): boolean;
  /** The status for the instance picked or for none. */
  statusOf(instance: Instance | undefined): number;
  /** The Location when the answer is a redirect to the instance picked; undefined when it is a body. */
  redirectOf(instance: Instance | undefined): string | undefined;
  /** The body, when the answer is not a redirect. */
  bodyOf(instance: Instance | undefined): Buffer;
}

/** A discover route the fast lane answers: `GET <path>?<query>`. */
export interface DiscoverRoute {
  readonly path: string;
  /** From a parsed query: undefined when the route's schema refuses it; throws what the route's checks (the name, strategy and filters included) refuse. */
  read(query: unknown): LaneDiscover | undefined;
}

/** A heartbeat route the fast lane answers: `POST <path>` with a small JSON body. */
export interface RenewRoute {
  readonly path: string;
  /** The instance a body the route's parser and schema take names; throws what the route would refuse. */
  keyOf(body: unknown): InstanceKey | undefined;
  answerOf(instance: Instance): Buffer;
}

export function discoverRoutes(ctx: AppContext): DiscoverRoute[] {
  const unavailable = Buffer.from(errorJson(discoverUnavailable()));
  const lightningUnavailableBytes = Buffer.from(errorJson(lightningUnavailable()));
  const validDiscoverQuery = Compile(DiscoverQuery);
  const validLightningQuery = Compile(LightningDiscoverQuery);
  return [
    {
      path: '/api/maxine/serviceops/discover',
      read: (query) => {
        if (!validDiscoverQuery.Check(query)) return undefined;
        const discover = discoverRequest(query);
        const found = discover.json ? 200 : 302;
        return {
          discovery: checkDiscovery(discover.discovery),
          proxied: () => isProxied(ctx, discover),
          statusOf: (instance) => (instance === undefined ? 503 : found),
          redirectOf: (instance) => (instance === undefined || discover.json ? undefined : instance.address + discover.endPoint),
          bodyOf: (instance) => (instance === undefined ? unavailable : instanceJsonBytes(instance)),
        };
      },
    },
    {
      path: '/discover',
      read: (query) => {
        if (!validLightningQuery.Check(query)) return undefined;
        const discovery = lightningDiscovery(query);
        return {
          discovery: checkDiscovery(discovery),
          proxied: () => false,
          statusOf: (instance) => (instance === undefined ? 404 : 200),
          redirectOf: () => undefined,
          bodyOf: (instance) => (instance === undefined ? lightningUnavailableBytes : lightningNodeBytes(instance)),
        };
      },
    },
  ];
}

/** A heartbeat's answer names the instance and its lease: the same for every heartbeat of one instance version. */
const heartbeatBytes = oncePerInstance((instance) => Buffer.from(JSON.stringify(heartbeatAnswer(instance, instance.ttlMs))));

const lightningNodeBytes = oncePerInstance((instance) => Buffer.from(JSON.stringify(lightningNode(instance))));

export function renewRoutes(): RenewRoute[] {
  const success = Buffer.from(JSON.stringify(LIGHTNING_SUCCESS));
  const validInstanceRef = Compile(InstanceRef);
  const validNodeRef = Compile(NodeRef);
  return [
    {
      path: '/api/maxine/serviceops/heartbeat',
      keyOf: (body) => (validInstanceRef.Check(body) ? instanceKey(body.serviceName, body.nodeName) : undefined),
      answerOf: heartbeatBytes,
    },
    {
      path: '/heartbeat',
      keyOf: (body) => (validNodeRef.Check(body) ? nodeKey(body.nodeId) : undefined),
      answerOf: () => success,
    },
  ];
}
