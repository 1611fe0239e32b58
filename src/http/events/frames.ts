import type { RegistryEvent } from '../../core/events.ts';
import { instanceJson } from '../views.ts';

/**
 * The wire forms of one event, built at most once however many subscribers
 * receive it: fan-out to thousands of connections must not serialise
 * thousands of times.
 */
export class EventFrames {
  private data: string | undefined;
  private lightning: Buffer | undefined;

  constructor(readonly event: RegistryEvent) {}

  /** The event as JSON: SSE `data:` lines and the `data` of WebSocket pushes. */
  get json(): string {
    this.data ??= eventJson(this.event);
    return this.data;
  }

  /**
   * The original Lightning push: {"event","data","timestamp"}, plus the
   * revision to resume from. Encoded once: sending a string would encode it
   * again for every socket.
   */
  get push(): Buffer {
    this.lightning ??= Buffer.from(
      `{"event":${JSON.stringify(this.event.type)},"data":${this.json},"timestamp":${this.event.timestamp},"revision":${this.event.revision}}`,
    );
    return this.lightning;
  }
}

function eventJson(event: RegistryEvent): string {
  const head = `"type":${JSON.stringify(event.type)},"revision":${event.revision},"timestamp":${JSON.stringify(new Date(event.timestamp).toISOString())}`;
  if (event.type === 'config_changed') return `{${head},"key":${JSON.stringify(event.key)},"value":${JSON.stringify(event.value)}}`;
  const ids = `"serviceName":${JSON.stringify(event.service)},"nodeName":${JSON.stringify(event.id)},"nodeId":${JSON.stringify(`${event.service}:${event.id}`)}`;
  return `{${head},${ids},"instance":${instanceJson(event.instance)}}`;
}
