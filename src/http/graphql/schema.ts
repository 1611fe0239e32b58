/**
 * The GraphQL schema. Field names follow the REST views (views.ts and the
 * register body), so a client moving between the two sees the same names
 * and values; enum values are the strings REST answers with.
 */
export const SCHEMA = /* GraphQL */ `
"An integer up to 2^53 - 1: revisions outgrow GraphQL's 32-bit Int."
scalar SafeInt

"A JSON object whose values are strings (instance metadata)."
scalar StringMap

"An integer from 1 to 65535, or a string of digits as the original Maxine accepted; \\"\\" for an address without a port."
scalar Port

enum AdminStatus { up starting draining maintenance }
enum Health { passing warning critical }
enum Scheme { http https }
enum CheckType { http tcp }

type HealthCheck {
  type: CheckType!
  path: String!
  statusMin: Int!
  statusMax: Int!
  bodyMatch: String!
  intervalMs: Int!
  timeoutMs: Int!
  rise: Int!
  fall: Int!
  jitterMs: Int!
  deregisterCriticalAfterMs: Int!
}

type Instance {
  serviceName: String!
  nodeName: String!
  "scheme://host[:port][path]"
  address: String!
  scheme: Scheme!
  hostName: String!
  "0 when the address has no port"
  port: Int!
  path: String!
  weight: Int!
  tags: [String!]!
  version: String!
  zone: String!
  metadata: StringMap!
  healthCheckPath: String!
  status: AdminStatus!
  statusReason: String!
  statusChangedAt: String!
  health: Health!
  healthReason: String!
  healthChangedAt: String!
  "The instance's own active check; null if it registered none."
  check: HealthCheck
  "Lease TTL in seconds."
  timeOut: Int!
  registeredAt: String!
  createRevision: SafeInt!
  modifyRevision: SafeInt!
  "The lease as this replica holds it; null when this is not the catalog's current version of the instance (events, removals)."
  renewedAt: String
  expiresAt: String
  "Ejected from this replica's picks by outlier detection; null like the lease."
  ejected: Boolean
  "The service the instance belongs to; needs registry:read on it."
  service: Service
}

type Service {
  name: String!
  "Revision of the last visible change to this service."
  revision: SafeInt!
  "How many instances may be picked now."
  eligible: Int!
  instances: [Instance!]!
}

"Leadership and store state of this replica, as GET /api/actuator/cluster answers."
type Cluster {
  enabled: Boolean!
  instanceId: String!
  isLeader: Boolean!
  hasLeader: Boolean!
  fencingToken: SafeInt
  leaderInstanceId: String
  observedAt: String!
  store: String!
  revision: SafeInt!
  reachable: Boolean!
  storeError: String
}

input ServiceFilter {
  namePrefix: String
  "Only services with at least one instance that may be picked."
  eligibleOnly: Boolean
}

enum ServiceSortField { NAME REVISION INSTANCES }

input ServiceSort {
  by: ServiceSortField! = NAME
  descending: Boolean! = false
}

input InstanceFilter {
  serviceName: String
  serviceNamePrefix: String
  "The instance must carry every one of these tags."
  tags: [String!]
  version: String
  zone: String
  status: [AdminStatus!]
  health: [Health!]
  "Only instances that may be picked (up, not critical, not ejected)."
  eligibleOnly: Boolean
}

type Query {
  "Services the caller may read (registry:read per service), by name unless sorted otherwise."
  services(filter: ServiceFilter, sort: ServiceSort, "At most this many (up to 1000)." first: Int): [Service!]!
  service(name: String!): Service
  "Instances of the services the caller may read, by service name."
  instances(filters: InstanceFilter, "At most this many (up to 1000)." first: Int): [Instance!]!
  "Pick an instance as GET /api/maxine/serviceops/discover does; null when none is eligible."
  discover(serviceName: String!, strategy: String, tags: [String!], version: String, zone: String, "Hash key for consistent-hash and rendezvous-hash." key: String): Instance
  cluster: Cluster!
  "The revision this replica's catalog has applied."
  revision: SafeInt!
}

input CheckInput {
  type: CheckType!
  path: String
  "A status or range passing the check, e.g. \\"200-399\\" (the default) or \\"204\\"."
  expectedStatus: String
  bodyMatch: String
  intervalMs: Int
  timeoutMs: Int
  rise: Int
  fall: Int
  jitterMs: Int
  deregisterCriticalAfterMs: Int
}

"The REST register body, field for field; null means absent."
input RegisterInput {
  hostName: String!
  nodeName: String!
  serviceName: String!
  port: Port
  ssl: Boolean
  "Lease TTL in seconds; 0 or absent uses heartBeatTimeout."
  timeOut: Int
  weight: Int
  path: String
  healthCheckPath: String
  tags: [String!]
  version: String
  zone: String
  metadata: StringMap
  "When absent, a new instance is up and an existing one keeps its status."
  status: AdminStatus
  check: CheckInput
}

type RegisterResult {
  instance: Instance!
  "False when the registration only renewed the lease."
  changed: Boolean!
}

type Mutation {
  register(input: RegisterInput!): RegisterResult!
  heartbeat(serviceName: String!, nodeName: String!): Instance!
  "Answers the instance as it was."
  deregister(serviceName: String!, nodeName: String!): Instance!
  setStatus(serviceName: String!, nodeName: String!, status: AdminStatus!, reason: String): Instance!
}

enum ServiceEventType {
  service_registered
  service_updated
  service_deregistered
  service_expired
  service_evicted
  health_changed
}

type ServiceEvent {
  type: ServiceEventType!
  revision: SafeInt!
  timestamp: String!
  serviceName: String!
  nodeName: String!
  "After the change, or as it was before a removal."
  instance: Instance!
}

"health_changed comes from the leader's active checks; ejections are this replica's own outlier detection."
enum HealthEventType { health_changed instance_ejected instance_restored }

type HealthEvent {
  type: HealthEventType!
  "For ejections, the catalog's revision when they happened (they take none of their own)."
  revision: SafeInt!
  timestamp: String!
  serviceName: String!
  nodeName: String!
  health: Health!
  reason: String!
  instance: Instance!
}

type Subscription {
  "Changes to instances the caller may discover, oldest first."
  serviceEvents(serviceName: String, types: [ServiceEventType!]): ServiceEvent!
  healthEvents(serviceName: String): HealthEvent!
}
`;
