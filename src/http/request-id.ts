import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A caller's own id is kept when it is a plain token; anything else is replaced. */
const incomingRequestId = /^[A-Za-z0-9._:-]{1,64}$/;

/** How many ids are made at once (see below). */
const IDS_PER_BLOCK = 256;

/**
 * Request ids: the caller's `x-request-id` when sane, else this boot's prefix
 * and a counter (cheaper than a UUID), `<8 hex digits>-<counter in base 36>`.
 *
 * Every response carries its id, and Node checks each header value with a
 * regular expression. A concatenation of 13 characters or more is a rope to
 * V8, which that check flattens through a slower runtime path; `join` makes a
 * flat string but costs about 0.1 µs a call (measured: docs/performance.md).
 * So ids are joined a block at a time and cut out of the block with `slice`,
 * whose result is flat too.
 */
export function requestIdGenerator(): (req: IncomingMessage) => string {
  const bootId = randomBytes(4).toString('hex');
  let counter = 0;
  let block = '';
  /** Where each id of the block starts, and where the last one ends. */
  const starts = new Uint32Array(IDS_PER_BLOCK + 1);
  let next = IDS_PER_BLOCK;
  const makeBlock = () => {
    const ids: string[] = [];
    for (let i = 0; i < IDS_PER_BLOCK; i++) {
      const id = `${bootId}-${(++counter).toString(36)}`;
      ids.push(id);
      starts[i + 1] = starts[i]! + id.length;
    }
    block = ids.join('');
    next = 0;
  };
  return (req) => {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && incomingRequestId.test(given)) return given;
    if (next === IDS_PER_BLOCK) makeBlock();
    return block.slice(starts[next]!, starts[++next]!);
  };
}
