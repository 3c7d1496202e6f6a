// The REST app built in-process over a real etcd (its own key prefix), with the real stores, event
// feed and ControlPlane, but no supervisor: intents are accepted and stay pending, so a test sees
// exactly what the API itself wrote. Every injected response is checked against openapi.yaml.
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
}

export interface HarnessOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly ready?: () => { ready: boolean; why: string };
  /** Wraps the event feed (to count subscriptions). */
  readonly events?: (feed: EventFeed) => EventSource;
  readonly sseHeartbeatMs?: number;
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
  const app = await buildApp({
    store,
    control: new ControlPlane({ store, ops, events: feed, clock: systemClock, observe }),
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
  return {
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
