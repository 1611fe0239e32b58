import { defineScript, type CommandParser } from 'redis';

/**
 * Every write is one Lua script, so the revision counter, the state and the
 * feed entry change together or not at all, and leader-only writes check the
 * fencing token in the same atomic step. node-redis runs them by EVALSHA.
 *
 * Inside each script the revision is taken (INCR) and the feed entry added
 * (XADD) before the state changes: should XADD fail (say, an out-of-memory
 * refusal), the state is untouched and the revision without a feed entry is
 * seen by every feed reader as a gap, which makes it resync from a snapshot.
 *
 * Numbers in Lua are doubles and `..` prints them with 14 significant
 * digits, so revisions are formatted with %d.
 */

/** The keys of one registry, all under the configured prefix. */
export interface Keys {
  /** INCR counter: the last revision. */
  readonly rev: string;
  /** Hash: member -> the instance as JSON (an Instance, revisions included). */
  readonly instances: string;
  /** Sorted set: member -> lease deadline (epoch ms). */
  readonly leases: string;
  /** Hash: the shared runtime state. */
  readonly kv: string;
  /** Stream: one entry per revision, ID `<revision>-0`. */
  readonly feed: string;
  /** String `<token>:<instanceId>`, expiring with the leader's term. */
  readonly leader: string;
  /** INCR counter: the last fencing token handed out. */
  readonly fence: string;
}

export function keysFor(prefix: string): Keys {
  return {
    rev: `${prefix}rev`,
    instances: `${prefix}instances`,
    leases: `${prefix}leases`,
    kv: `${prefix}kv`,
    feed: `${prefix}feed`,
    leader: `${prefix}leader`,
    fence: `${prefix}fence`,
  };
}

const REVISION = `local function revision(key) return string.format('%d', redis.call('INCR', key)) end\n`;

/** True when the leader key does not hold this fencing token (or there is no leader). */
const FENCED = `local function fenced(key, token)
  local holder = redis.call('GET', key)
  return not holder or string.match(holder, '^(%d+):') ~= token
end\n`;

function keys(parser: CommandParser, ...names: string[]): void {
  for (const name of names) parser.pushKey(name);
}

/** Script replies are arrays of integers and strings, decoded by the caller. */
const raw = (reply: unknown): unknown => reply;

/**
 * Creates or replaces an instance. The record is the instance JSON that the
 * caller built without its two revision fields (`head`, open at the end);
 * the script appends them: createRevision kept from the stored record, or
 * this revision for a new instance. Returns [revision, createRevision].
 */
const upsert = defineScript({
  NUMBER_OF_KEYS: 4,
  SCRIPT: `${REVISION}
local rev = revision(KEYS[1])
local created = rev
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then created = string.match(old, '"createRevision":(%d+),"modifyRevision":%d+}$') or rev end
local record = ARGV[2] .. ',"createRevision":' .. created .. ',"modifyRevision":' .. rev .. '}'
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], rev .. '-0', 'op', 'upsert', 'at', ARGV[4], 'record', record)
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {tonumber(rev), tonumber(created)}`,
  parseCommand(parser: CommandParser, k: Keys, member: string, head: string, deadline: number, renewedAt: number, maxLen: number) {
    keys(parser, k.rev, k.instances, k.leases, k.feed);
    parser.push(member, head, String(deadline), String(renewedAt), String(maxLen));
  },
  transformReply: raw,
});

/**
 * Compare-and-set: replaces the record (head as for upsert) only while its
 * modifyRevision is still ARGV[3], fenced by the token unless it is ''.
 * The lease is left alone (no ZADD): the feed entry's `at` is the renewal
 * the caller last saw, so every catalog keeps the same deadline. Returns
 * [revision, createRevision], [0, 0] when the instance is absent or was
 * changed since, [-1, 0] when the token is not the current leader's.
 */
const update = defineScript({
  NUMBER_OF_KEYS: 4,
  SCRIPT: `${REVISION}${FENCED}
if ARGV[6] ~= '' and fenced(KEYS[4], ARGV[6]) then return {-1, 0} end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return {0, 0} end
local created, modified = string.match(old, '"createRevision":(%d+),"modifyRevision":(%d+)}$')
if modified ~= ARGV[3] then return {0, 0} end
local rev = revision(KEYS[1])
local record = ARGV[2] .. ',"createRevision":' .. created .. ',"modifyRevision":' .. rev .. '}'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], rev .. '-0', 'op', 'upsert', 'at', ARGV[4], 'record', record)
redis.call('HSET', KEYS[2], ARGV[1], record)
return {tonumber(rev), tonumber(created)}`,
  parseCommand(parser: CommandParser, k: Keys, member: string, head: string, modifyRevision: number, renewedAt: number, maxLen: number, token: string) {
    keys(parser, k.rev, k.instances, k.feed, k.leader);
    parser.push(member, head, String(modifyRevision), String(renewedAt), String(maxLen), token);
  },
  transformReply: raw,
});

/**
 * Removes one instance: a deregistration (token '') or an eviction fenced by
 * the token. Returns the revision, 0 when the instance is absent, -1 when
 * the token is not the current leader's.
 */
const remove = defineScript({
  NUMBER_OF_KEYS: 5,
  SCRIPT: `${REVISION}${FENCED}
if ARGV[6] ~= '' and fenced(KEYS[5], ARGV[6]) then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
local rev = revision(KEYS[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], rev .. '-0', 'op', 'remove', 'service', ARGV[2], 'id', ARGV[3], 'reason', ARGV[4])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return tonumber(rev)`,
  parseCommand(
    parser: CommandParser,
    k: Keys,
    member: string,
    service: string,
    id: string,
    reason: string,
    maxLen: number,
    token: string,
  ) {
    keys(parser, k.rev, k.instances, k.leases, k.feed, k.leader);
    parser.push(member, service, id, reason, String(maxLen), token);
  },
  transformReply: raw,
});

/**
 * Removes up to `limit` instances whose lease deadline is at or before
 * `now`, each with its own revision and feed entry (reason 'expired'),
 * fenced by the token. Returns [removed, last revision, 1 if there may be
 * more], or [-1, 0, 0] when fenced. The member is `<service>\n<id>` and a
 * service name cannot contain a newline, so the first one splits it.
 */
const expire = defineScript({
  NUMBER_OF_KEYS: 5,
  SCRIPT: `${REVISION}${FENCED}
if fenced(KEYS[5], ARGV[1]) then return {-1, 0, 0} end
local limit = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, limit)
local removed, last = 0, '0'
for _, member in ipairs(due) do
  if redis.call('HEXISTS', KEYS[2], member) == 1 then
    local rev = revision(KEYS[1])
    local cut = string.find(member, '\\n', 1, true)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], rev .. '-0', 'op', 'remove',
      'service', string.sub(member, 1, cut - 1), 'id', string.sub(member, cut + 1), 'reason', 'expired')
    redis.call('HDEL', KEYS[2], member)
    removed = removed + 1
    last = rev
  end
  redis.call('ZREM', KEYS[3], member)
end
return {removed, tonumber(last), #due == limit and 1 or 0}`,
  parseCommand(parser: CommandParser, k: Keys, token: string, now: number, limit: number, maxLen: number) {
    keys(parser, k.rev, k.instances, k.leases, k.feed, k.leader);
    parser.push(token, String(now), String(limit), String(maxLen));
  },
  transformReply: raw,
});

/**
 * Sets (value given) or deletes (value null) a KV entry. Returns the
 * revision, or 0 when a condition was given and the stored value does not
 * meet it ('absent', or 'equals' the expected value): nothing is written.
 */
const putKv = defineScript({
  NUMBER_OF_KEYS: 3,
  SCRIPT: `${REVISION}
local condition = ARGV[3]
if condition ~= 'any' then
  local current = redis.call('HGET', KEYS[2], ARGV[2])
  if (condition == 'absent' and current) or (condition == 'equals' and current ~= ARGV[4]) then return 0 end
end
local rev = revision(KEYS[1])
if ARGV[5] == 'set' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], rev .. '-0', 'op', 'kv', 'key', ARGV[2], 'value', ARGV[6])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[6])
else
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], rev .. '-0', 'op', 'kv', 'key', ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return tonumber(rev)`,
  /** `expected`: undefined writes unconditionally, null only while the entry is absent, a string only while it holds that. */
  parseCommand(parser: CommandParser, k: Keys, maxLen: number, key: string, value: string | null, expected?: string | null) {
    keys(parser, k.rev, k.kv, k.feed);
    const condition = expected === undefined ? 'any' : expected === null ? 'absent' : 'equals';
    parser.push(String(maxLen), key, condition, expected ?? '', value === null ? 'delete' : 'set', value ?? '');
  },
  transformReply: raw,
});

/**
 * The whole state at one revision, read atomically:
 * [revision, instances (member, record, ...), leases (member, deadline, ...), kv (key, value, ...)].
 * Flat arrays rather than RESP3 maps: node-redis decodes maps into plain
 * objects, where a key such as "__proto__" would not survive.
 */
const snapshot = defineScript({
  NUMBER_OF_KEYS: 4,
  SCRIPT: `return {redis.call('GET', KEYS[1]) or '0', redis.call('HGETALL', KEYS[2]),
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[4])}`,
  parseCommand(parser: CommandParser, k: Keys) {
    keys(parser, k.rev, k.instances, k.leases, k.kv);
  },
  transformReply: raw,
});

/**
 * Whether the feed still holds the history after a revision:
 * [current revision, ID of the first entry at or after ARGV[1] or ''].
 */
const probe = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `local first = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', 1)[1]
return {redis.call('GET', KEYS[1]) or '0', first and first[1] or ''}`,
  parseCommand(parser: CommandParser, k: Keys, fromId: string) {
    keys(parser, k.rev, k.feed);
    parser.push(fromId);
  },
  transformReply: raw,
});

/**
 * One election round, run by every replica every leaderRenewMs: with no
 * leader, take the term (a new fencing token); as the leader, extend it;
 * otherwise just read it. Returns the leader key's value `<token>:<id>`.
 */
const lead = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `local holder = redis.call('GET', KEYS[1])
if holder then
  local colon = string.find(holder, ':', 1, true)
  if colon and string.sub(holder, colon + 1) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return holder
end
holder = string.format('%d', redis.call('INCR', KEYS[2])) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], holder, 'PX', ARGV[2])
return holder`,
  parseCommand(parser: CommandParser, k: Keys, instanceId: string, leaseMs: number) {
    keys(parser, k.leader, k.fence);
    parser.push(instanceId, String(leaseMs));
  },
  transformReply: raw,
});

/** Ends the term if it is still this one (`<token>:<id>`), so another replica takes over at once. */
const resign = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  parseCommand(parser: CommandParser, k: Keys, holder: string) {
    keys(parser, k.leader);
    parser.push(holder);
  },
  transformReply: raw,
});

export const SCRIPTS = { upsert, update, remove, expire, putKv, snapshot, probe, lead, resign };
