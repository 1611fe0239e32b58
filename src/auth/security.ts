import type { Catalog } from '../core/catalog.ts';
import { AccessPolicy, type AclRule } from './access-policy.ts';
import { parseAclRules } from './acl-rules.ts';
import { AttemptLimiter } from './attempt-limiter.ts';
import { Authenticator } from './authenticator.ts';
import { bootstrapUsers, type ConfiguredUser } from './bootstrap.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import type { OidcVerifier } from './oidc.ts';
import { RefreshFamilies } from './refresh-families.ts';
import { ServiceTokens } from './service-tokens.ts';
import { Sessions, type SessionSettings } from './sessions.ts';
import { configuredKeyRing, GeneratedKeys, type KeyRing, type KeySettings } from './signing-keys.ts';
import { Users, type KvConditionalWriter, type KvWriter } from './users.ts';

export interface SecurityOptions {
  readonly catalog: Catalog;
  /** Writes to the store's KV (registry.putKv): resolves once this replica's catalog has the change. */
  readonly write: KvWriter;
  /** Compare-and-set on the store's KV (registry.putKvIf), for state two replicas may change at once (sessions). */
  readonly writeIf: KvConditionalWriter;
  /** Whether this replica leads now: only the leader creates the first users and deletes expired sessions. */
  readonly isLeader: () => boolean;
  readonly keys: KeySettings;
  readonly sessions: SessionSettings;
  readonly configuredUsers: readonly ConfiguredUser[];
  readonly requireClientAuth: boolean;
  readonly signinAttemptsPerUser: number;
  readonly signinAttemptsPerAddress: number;
  readonly oidc: OidcVerifier | null;
  readonly dataDir: string;
  readonly announce: (message: string) => void;
  readonly onWarning: (message: string) => void;
  readonly clock?: () => number;
}

const SIGNIN_WINDOW_MS = 60_000;
/** How often a follower checks whether it must take over bootstrapping. */
const BOOTSTRAP_RETRY_MS = 1000;
const ACL_NAME = 'rules';

/** Identities, credentials and the access policy of one replica, all kept in the store's KV. */
export class Security {
  readonly users: Users;
  readonly serviceTokens: ServiceTokens;
  readonly sessions: Sessions;
  readonly families: RefreshFamilies;
  readonly authenticator: Authenticator;
  readonly signinPerUser: AttemptLimiter;
  readonly signinPerAddress: AttemptLimiter;
  private readonly aclRules: KvCollection<readonly AclRule[]>;
  private cachedPolicy: { version: number; policy: AccessPolicy } | undefined;
  private readonly generated: GeneratedKeys | undefined;
  private bootstrapTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: SecurityOptions,
    readonly keys: () => KeyRing,
    generated: GeneratedKeys | undefined,
  ) {
    const clock = options.clock ?? Date.now;
    this.generated = generated;
    this.users = new Users(options.catalog, options.writeIf, clock, options.onWarning);
    this.serviceTokens = new ServiceTokens(options.catalog, options.write, clock, options.onWarning);
    this.sessions = new Sessions(keys, options.sessions);
    this.families = new RefreshFamilies({
      catalog: options.catalog,
      write: options.write,
      writeIf: options.writeIf,
      sessions: this.sessions,
      isLeader: options.isLeader,
      clock,
      onWarning: options.onWarning,
    });
    this.authenticator = new Authenticator({
      sessions: this.sessions,
      users: this.users,
      serviceTokens: this.serviceTokens,
      families: this.families,
      oidc: options.oidc,
    });
    this.signinPerUser = new AttemptLimiter(options.signinAttemptsPerUser, SIGNIN_WINDOW_MS, clock);
    this.signinPerAddress = new AttemptLimiter(options.signinAttemptsPerAddress, SIGNIN_WINDOW_MS, clock);
    this.aclRules = new KvCollection<readonly AclRule[]>(
      options.catalog,
      `${SECURITY_KV_PREFIX}acl/`,
      (value) => {
        const parsed = parseAclRules(value);
        return 'rules' in parsed ? parsed.rules : null;
      },
      options.onWarning,
    );
  }

  /** Loads the signing keys (making one when none is configured or stored) and makes sure a user exists. */
  static async open(options: SecurityOptions): Promise<Security> {
    const configured = await configuredKeyRing(options.keys);
    let generated: GeneratedKeys | undefined;
    if (configured === null) {
      generated = new GeneratedKeys(options.catalog, options.write, options.onWarning);
      await generated.ensure();
    }
    const keys = configured === null ? () => generated!.ring() : () => configured;
    const security = new Security(options, keys, generated);
    await security.bootstrap();
    return security;
  }

  /** The access policy in force: rebuilt only when the ACL rules change. */
  policy(): AccessPolicy {
    const version = this.aclRules.version;
    if (this.cachedPolicy?.version !== version) {
      const rules = this.aclRules.get(ACL_NAME) ?? [];
      this.cachedPolicy = { version, policy: new AccessPolicy(rules, AccessPolicy.openActionsFor(this.options.requireClientAuth)) };
    }
    return this.cachedPolicy.policy;
  }

  aclRulesInForce(): readonly AclRule[] {
    return this.aclRules.get(ACL_NAME) ?? [];
  }

  async setAclRules(rules: readonly AclRule[]): Promise<void> {
    await this.options.write(this.aclRules.keyOf(ACL_NAME), JSON.stringify(rules));
  }

  close(): void {
    clearTimeout(this.bootstrapTimer);
    this.users.close();
    this.serviceTokens.close();
    this.families.close();
    this.aclRules.close();
    this.generated?.close();
  }

  /** A follower keeps checking until an admin and the configured users exist, or it becomes the leader and creates them. */
  private async bootstrap(): Promise<void> {
    if (this.options.isLeader()) {
      await bootstrapUsers({
        users: this.users,
        configured: this.options.configuredUsers,
        dataDir: this.options.dataDir,
        announce: this.options.announce,
      });
      return;
    }
    const missing = this.options.configuredUsers.some((u) => this.users.get(u.userName) === undefined);
    if (this.users.hasAdmin() && !missing) return;
    this.retryBootstrapLater();
  }

  private retryBootstrapLater(): void {
    this.bootstrapTimer = setTimeout(() => {
      this.bootstrap().catch((error: unknown) => {
        this.options.onWarning(`Creating the first users failed; will retry: ${String(error)}`);
        this.retryBootstrapLater();
      });
    }, BOOTSTRAP_RETRY_MS);
    this.bootstrapTimer.unref();
  }
}
