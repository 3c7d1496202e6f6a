// The REST app built in-process over a real etcd (its own key prefix), with the real stores, event
// feed and ControlPlane, but no supervisor: intents are accepted and stay pending, so a test sees
// exactly what the API itself wrote. Every injected response is checked against openapi.yaml.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Etcd3 } from 'etcd3';
import type { Test } from 'tap';
import { ControlPlane } from '../../../src/api/control-plane.js';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { EventFeed } from '../../../src/adapters/etcd/event-feed.js';
import { EtcdIdempotencyRecords } from '../../../src/adapters/etcd/idempotency-records.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../../src/adapters/etcd/operation-store.js';
import { buildApp } from '../../../src/adapters/http/app.js';
import type { EventSource } from '../../../src/adapters/http/events.js';
import { systemClock } from '../../../src/adapters/system-clock.js';
import { describeChain } from '../../../src/core/status.js';
import { RoleBindings } from '../../../src/api/access.js';
import { EtcdAuditLog } from '../../../src/adapters/etcd/audit-log.js';
import { peerCertificate } from '../../../src/adapters/http/access.js';
import { principalName } from '../../../src/adapters/security/tls.js';
import { CertificateAuthority } from '../../../src/devstack/certs.js';
import { OPENAPI_FILE, OpenApiContract } from '../../helpers/openapi.js';

export interface Harness {
  readonly app: FastifyInstance;
  readonly keys: EtcdKeys;
  readonly store: EtcdChainStore;
  readonly ops: EtcdOperationStore;
  readonly feed: EventFeed;
  readonly prefix: string;
  readonly contract: OpenApiContract;
  /** Every key under the prefix with its value and mod revision: "changes nothing" means this stays equal. */
  snapshot(): Promise<string[]>;
  /** The etcd cluster's revision (any write anywhere moves it). */
  revision(): Promise<bigint>;
  /** One request: app.inject, or over HTTPS with the client certificate in mTLS mode. */
  send(opts: InjectOptions & { method: string; url: string }): Promise<SentResponse>;
}

export interface SentResponse {
  readonly statusCode: number;
  readonly body: string;
  readonly headers: Record<string, unknown>;
  json(): unknown;
}

export interface HarnessOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly ready?: () => { ready: boolean; why: string };
  /** Wraps the event feed (to count subscriptions). */
  readonly events?: (feed: EventFeed) => EventSource;
  readonly sseHeartbeatMs?: number;
  /**
   * mTLS: the app serves HTTPS on a free port with certificates minted into `dir`; `send` presents
   * the client certificate of principal `fuzzer` (every operator role); refusals are audited.
   */
  readonly mtls?: { readonly dir: string };
}

export async function buildHarness(opts: HarnessOptions): Promise<Harness> {
  const { client, prefix } = opts;
  const keys = new EtcdKeys(prefix);
  const store = new EtcdChainStore(client, keys);
  const ops = new EtcdOperationStore(client, keys);
  const feed = new EventFeed(client, keys);
  // The operator view over the store state alone: node probing is not under test here.
  const observe = async (chainId: string) => {
    const state = await store.read(chainId);
    if (!state) return undefined;
    const [lastFailover] = await store.history(chainId, 1);
    return { state, observations: new Map(), nowMs: 0, lastFailover, decision: undefined, wallMs: Date.now() };
  };
  const describe = async (chainId: string) => {
    const observed = await observe(chainId);
    return observed && describeChain(observed);
  };
  let tls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  let clientTls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  let audit: EtcdAuditLog | undefined;
  if (opts.mtls) {
    const ca = CertificateAuthority.create(join(opts.mtls.dir, 'ca'));
    const server = ca.issue('server', { cn: 'baton', usage: 'server' });
    const fuzzer = ca.issue('fuzzer', { cn: 'fuzzer', usage: 'client' });
    tls = { ca: readFileSync(ca.caFile), cert: readFileSync(server.certFile), key: readFileSync(server.keyFile) };
    clientTls = { ca: tls.ca, cert: readFileSync(fuzzer.certFile), key: readFileSync(fuzzer.keyFile) };
    audit = new EtcdAuditLog(client, keys, systemClock, { maxRecords: 10_000_000, maxAgeMs: 24 * 3600_000 });
  }
  const bindings = new RoleBindings([{ principal: 'fuzzer', roles: ['viewer', 'operator', 'admin', 'breakglass'] }]);
  const app = await buildApp({
    store,
    control: new ControlPlane({ store, ops, events: feed, clock: systemClock, observe, ...(audit ? { audit } : {}) }),
    ...(tls && audit
      ? {
          tls,
          access: {
            authenticate: (req) => {
              const name = principalName(peerCertificate(req), Date.now());
              return name === undefined ? undefined : bindings.principal(name);
            },
            audit,
          },
        }
      : {}),
    events: opts.events ? opts.events(feed) : feed,
    sseHeartbeatMs: opts.sseHeartbeatMs,
    describe,
    limits: { minLeaseTtlMs: 4500, nodeDeadlineMs: 250 },
    idempotency: new EtcdIdempotencyRecords(client, keys, systemClock),
    ready: opts.ready ?? (() => ({ ready: true, why: 'etcd lease proven' })),
    replicaId: 'replica-http-test',
    openapiPath: OPENAPI_FILE,
  });
  await app.ready();
  let send: Harness['send'] = async (o) => {
    const res = await app.inject(o);
    return { statusCode: res.statusCode, body: res.body, headers: res.headers, json: () => res.json() };
  };
  if (clientTls) {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const agent = new Agent({ keepAlive: true, ...clientTls });
    const c = clientTls;
    send = (o) =>
      new Promise((resolve, reject) => {
        const headers = { ...(o.headers as Record<string, string> | undefined) };
        const payload = typeof o.payload === 'string' || o.payload === undefined ? o.payload : JSON.stringify(o.payload);
        const req = request(`${base}${o.url}`, { method: o.method, agent, ...c, headers, signal: AbortSignal.timeout(10_000) }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({ statusCode: res.statusCode ?? 0, body, headers: res.headers, json: () => JSON.parse(body) });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(payload);
      });
  }
  return {
    send,
    app,
    keys,
    store,
    ops,
    feed,
    prefix,
    contract: new OpenApiContract(),
    async snapshot() {
      const res = await client.getAll().prefix(prefix).exec();
      return res.kvs.map((kv) => `${kv.key.toString()} @${kv.mod_revision} ${kv.value.toString()}`).sort();
    },
    async revision() {
      const res = await client.getAll().prefix(prefix).limit(1).exec();
      return BigInt(res.header.revision);
    },
  };
}

export interface Reply {
  status: number;
  body: any;
  text: string;
  headers: Record<string, unknown>;
}

/** Injects a request and checks the response against openapi.yaml for its path, method and status. */
export async function call(t: Test, h: { app: FastifyInstance; contract: OpenApiContract }, opts: InjectOptions & { method: string; url: string }): Promise<Reply> {
  const res = await h.app.inject(opts);
  const template = h.contract.templateOf(opts.url);
  if (template) {
    t.same(h.contract.check(opts.method, template, res), [], `${opts.method} ${opts.url} -> ${res.statusCode} conforms to openapi.yaml`);
  } else {
    t.fail(`${opts.url} is not documented in openapi.yaml`);
  }
  let body: unknown;
  try {
    body = res.body === '' ? undefined : JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body, text: res.body, headers: res.headers };
}

/** A chain spec whose nodes nobody serves (leaderless; probing is not under test). */
export function idleSpec(nodes: string[] = ['n1', 'n2', 'n3']): Record<string, unknown> {
  return {
    nodes: nodes.map((id, i) => ({ id, endpoint: `127.0.0.1:${7100 + i}`, zone: `z${i}` })),
    policy: { blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs: 6000 },
  };
}
