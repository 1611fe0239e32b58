/**
 * A replica in a process of its own, for cross-process tests: opens a
 * shared-file store on the directory given, then answers one JSON command
 * per stdin line with one JSON line on stdout. After `close` it ends by
 * itself (no process.exit), which shows close() left nothing running.
 *
 *   node --import tsx child-replica.fixture.ts <dir> <instanceId> [options JSON]
 */
import { createInterface } from 'node:readline';
import { Catalog } from '../../core/catalog.ts';
import { testInstance } from '../../core/fixtures.ts';
import { createSharedFileStore } from './shared-file-store.ts';

export type ChildCommand =
  | { readonly id: number; readonly op: 'upsert-many'; readonly prefix: string; readonly count: number }
  | { readonly id: number; readonly op: 'state' }
  | { readonly id: number; readonly op: 'leadership' }
  | { readonly id: number; readonly op: 'expire'; readonly token: number }
  | { readonly id: number; readonly op: 'close' };

export interface ChildState {
  readonly revision: number;
  readonly resets: number;
  /** service/id of every instance, sorted. */
  readonly instances: readonly string[];
}

const [dir, instanceId, options] = process.argv.slice(2);
if (dir === undefined || instanceId === undefined) throw new Error('usage: child-replica.fixture.ts <dir> <instanceId> [options JSON]');

const catalog = new Catalog(1000);
let resets = 0;
catalog.subscribe({ event: () => {}, reset: () => resets++ });
const store = createSharedFileStore({ leaderLeaseMs: 1000, leaderRenewMs: 250, ...(JSON.parse(options ?? '{}') as object), dir, instanceId });
await store.open(catalog, catalog);
reply({ ready: true });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line) as ChildCommand;
  try {
    reply({ id: command.id, result: await run(command) });
  } catch (err) {
    reply({ id: command.id, error: { name: (err as Error).name, message: (err as Error).message } });
  }
  if (command.op === 'close') break;
}

async function run(command: ChildCommand): Promise<unknown> {
  switch (command.op) {
    case 'upsert-many': {
      const writes = Array.from({ length: command.count }, (_, i) => store.upsert(testInstance('api', `${command.prefix}-${i}`), Date.now()));
      await Promise.all(writes);
      return catalog.revision;
    }
    case 'state':
      return state();
    case 'leadership':
      return store.leadership();
    case 'expire':
      return store.expire(Date.now(), command.token);
    case 'close':
      await store.close();
      return null;
  }
}

function state(): ChildState {
  const instances = catalog.snapshot().instances.map(({ instance }) => `${instance.service}/${instance.id}`);
  return { revision: catalog.revision, resets, instances: instances.sort() };
}

function reply(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}
