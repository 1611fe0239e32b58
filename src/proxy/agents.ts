import { Agent } from 'undici';
import { guardedLookup } from '../net/guarded-lookup.ts';

/**
 * undici takes the connect timeout per Agent, not per request, so there is
 * one keep-alive Agent per distinct connectTimeoutMs (policies rarely
 * differ, so this stays a handful). Every connection resolves names through
 * the guarded lookup: a name registered for an instance cannot lead to a
 * link-local or metadata address.
 */
export class Agents {
  private readonly agents = new Map<number, Agent>();
  private readonly lookup: ReturnType<typeof guardedLookup>;

  constructor(allowLinkLocal: boolean) {
    this.lookup = guardedLookup(allowLinkLocal);
  }

  get(connectTimeoutMs: number): Agent {
    let agent = this.agents.get(connectTimeoutMs);
    if (agent === undefined) {
      agent = new Agent({
        connect: { timeout: connectTimeoutMs, lookup: this.lookup },
        // One request per connection at a time: a slow response never holds up another.
        pipelining: 1,
        // The forwarder keeps its own timers: undici's have a resolution of about a second.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.agents.set(connectTimeoutMs, agent);
    }
    return agent;
  }

  /** Close every connection; requests still running are cut. */
  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((agent) => agent.destroy()));
  }
}
