import type { MaxineConfig } from '../config/schema.ts';
import type { ClientAddress } from './client-address.ts';
import type { Registry } from '../registry/registry.ts';
import type { RuntimeConfig } from '../registry/runtime-config.ts';

/** What every surface needs; surfaces hold no registry state of their own. */
export interface AppContext {
  readonly registry: Registry;
  readonly runtime: RuntimeConfig;
  readonly config: MaxineConfig;
  /** This replica's name in leadership (MAXINE_INSTANCE_ID or <hostname>-<pid>). */
  readonly instanceId: string;
  /** The client address as trustProxy allows it to be believed. */
  readonly clientAddress: ClientAddress;
}
