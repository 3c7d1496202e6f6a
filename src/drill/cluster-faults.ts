// The drill's faults on the control plane's own parts: Baton replicas (kill, pause, cut off from
// etcd or delayed on the way to it, rolling restart) and etcd members (kill, pause, quorum loss).
// Each heals what it broke and notes what the end checks need.
import { waitFor } from '../devstack/process.js';
import { readActivityLog } from '../devstack/sim.js';
import { sleep, waitRecovered, type StepContext } from './faults.js';
import type { NodeSlot } from './stack.js';
import type { Step } from './schedule.js';

/** What a cluster step leaves for runStep: the focus chain's leader after it, if it waited for one. */
export interface ClusterOutcome {
  readonly after: { nodeId: string; term: bigint } | undefined;
  readonly healed: boolean;
}

/** How long a replica cut off from etcd may keep acting: its lease TTL (2 s in drills) and a margin. */
const SELF_FENCE_WITHIN_MS = 3000;
/** How long the supervisor's etcd traffic is held back: past its 2 s lease and the takeover. */
const ETCD_DELAY_MS = 4000;

/** Runs one replica or etcd step; undefined when it had to be skipped. */
export async function clusterStep(
  ctx: StepContext,
  step: Step,
  chain: string,
  active: NodeSlot | undefined,
  count: () => void,
): Promise<ClusterOutcome | undefined> {
  const { stack, record } = ctx;
  let after: { nodeId: string; term: bigint } | undefined;
  let healed = false;
  switch (step.kind) {
    case 'kill-replica': {
      const r = stack.dev.replicas[Math.floor(step.pick * stack.dev.replicas.length)]!;
      await r.kill();
      count();
      await sleep(step.holdMs);
      await stack.dev.startReplica(r.replicaId);
      break;
    }
    case 'pause-replica':
    case 'pause-replica-kill-etcd-leader': {
      const r = stack.dev.replicas[Math.floor(step.pick * stack.dev.replicas.length)]!;
      const leader = step.kind === 'pause-replica-kill-etcd-leader' ? await stack.dev.etcd.leaderIndex() : undefined;
      r.process.pause();
      if (leader !== undefined) await stack.dev.etcd.kill(leader);
      count();
      await sleep(step.holdMs);
      const resumedAt = Date.now();
      r.process.resume();
      if (leader !== undefined) await stack.dev.etcd.restart(leader);
      await sleep(1000);
      record.fencedAfterPause += stack.replicaLines.filter((l) => l.replica === r.replicaId && l.at >= resumedAt).length;
      break;
    }
    case 'pause-supervisor-kill-active':
    case 'pause-supervisor-mid-failover': {
      // The survivor takes the chain over and fails over; the woken supervisor must not write
      // (mid-failover: it is frozen as it logs its decision, typically before its leader txn).
      const r = await stack.supervisorOf(chain);
      if (!r) {
        record.skipped++;
        return undefined;
      }
      if (step.kind === 'pause-supervisor-kill-active') {
        r.process.pause();
        await stack.killNode(active!);
      } else {
        const deciding = r.process.waitForLine((l) => l.includes(`"chain":"${chain}"`) && l.includes('failing over to'), 20_000);
        await stack.killNode(active!);
        const decided = await deciding.then(() => true, () => false);
        r.process.pause();
        if (!decided) ctx.note(`  ${r.replicaId} logged no failover decision for ${chain}; paused anyway`);
      }
      count();
      await sleep(step.holdMs);
      const resumedAt = Date.now();
      r.process.resume();
      after = await waitRecovered(ctx, chain, active!.node);
      await sleep(1000);
      record.fencedAfterPause += stack.replicaLines.filter((l) => l.replica === r.replicaId && l.at >= resumedAt).length;
      await stack.restartNode(active!);
      healed = true;
      break;
    }
    case 'kill-etcd-follower':
    case 'kill-etcd-leader': {
      const leader = await stack.dev.etcd.leaderIndex();
      const i = step.kind === 'kill-etcd-leader' ? leader : (leader + 1 + Math.floor(step.pick * 2)) % 3;
      await stack.dev.etcd.kill(i);
      count();
      await sleep(step.holdMs);
      await stack.dev.etcd.restart(i);
      break;
    }
    case 'pause-etcd-follower':
    case 'pause-etcd-leader': {
      const leader = await stack.dev.etcd.leaderIndex();
      const i = step.kind === 'pause-etcd-leader' ? leader : (leader + 1 + Math.floor(step.pick * 2)) % 3;
      stack.dev.etcd.pause(i);
      count();
      await sleep(step.holdMs);
      stack.dev.etcd.resume(i);
      break;
    }
    case 'etcd-quorum-loss':
      await quorumLoss(ctx, step, count);
      break;
    case 'rolling-restart':
      for (const r of [...stack.dev.replicas]) {
        await r.stop(3000);
        await stack.dev.startReplica(r.replicaId);
        await sleep(500);
      }
      count();
      break;
    case 'cut-replica-etcd':
      await cutReplicaFromEtcd(ctx, step, count);
      break;
    case 'delay-supervisor-etcd': {
      // The chain's supervisor's etcd traffic is held back while its active dies: the failover
      // write it sends while its lease is still proven reaches etcd after the lease expired and
      // the other replica took over. The write's compare must fail it (the etcd scan checks).
      const r = await stack.supervisorOf(chain);
      if (!r) {
        record.skipped++;
        return undefined;
      }
      stack.delayEtcd(r.replicaId, ETCD_DELAY_MS);
      await stack.killNode(active!);
      count();
      await sleep(Math.max(step.holdMs, ETCD_DELAY_MS + 1000));
      stack.delayEtcd(r.replicaId, 0);
      after = await waitRecovered(ctx, chain, active!.node);
      await stack.restartNode(active!);
      healed = true;
      break;
    }
    default:
      throw new Error(`not a cluster fault: ${step.kind}`);
  }
  return { after, healed };
}

/**
 * One replica blackholed from every etcd member while it keeps running: it must stop acting
 * within its lease (it logs that its lease is no longer proven), the other replicas take its
 * chains over, and once the cut heals it rejoins.
 */
async function cutReplicaFromEtcd(ctx: StepContext, step: Step, count: () => void): Promise<void> {
  const { stack, record } = ctx;
  const running = stack.dev.replicas.filter((x) => x.process.running);
  const r = running[Math.floor(step.pick * running.length)];
  // Only a replica in an etcd session acts; one still rejoining after the last fault has nothing
  // to stop, so wait (bounded) until it is ready again.
  const ready = r && (await waitFor(`${r.replicaId} ready`, async () => ((await r.api.request('GET', '/readyz').catch(() => undefined))?.status === 200 ? true : undefined), 15_000, 200).catch(() => false));
  if (!r || !ready) {
    record.skipped++;
    ctx.note(`  skipped: ${r?.replicaId ?? 'no replica'} is not ready`);
    return;
  }
  const cutAt = Date.now();
  stack.cutFromEtcd(r.replicaId, true);
  count();
  await sleep(step.holdMs);
  const fenced = stack.replicaLines.some((l) => l.replica === r.replicaId && l.at >= cutAt && l.line.includes('no longer proven'));
  stack.cutFromEtcd(r.replicaId, false);
  if (step.holdMs >= SELF_FENCE_WITHIN_MS && !fenced) {
    record.findings.push({ kind: 'NOT_SELF_FENCED', chain: '*', message: `${r.replicaId} was cut off from etcd for ${step.holdMs} ms and never said it stopped acting` });
    ctx.note(`  NOT_SELF_FENCED: ${r.replicaId} cut off from etcd for ${step.holdMs} ms`);
  }
  if (fenced) record.fencedAfterCut++;
}

/** Revision of the etcd cluster as a member's JSON gateway reports it. */
async function etcdRevision(url: string): Promise<bigint> {
  const res = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
    signal: AbortSignal.timeout(2000),
  });
  const body = (await res.json()) as { header?: { revision?: string } };
  return BigInt(body.header?.revision ?? '0');
}

/** Two members of three paused: nothing may be promoted under a term written during the loss. */
async function quorumLoss(ctx: StepContext, step: Step, count: () => void): Promise<void> {
  const etcd = ctx.stack.dev.etcd;
  const leader = await etcd.leaderIndex();
  const other = (leader + 1 + Math.floor(step.pick * 2)) % 3;
  const rev = await etcdRevision(etcd.members[leader]!.clientUrl);
  etcd.pause(leader);
  etcd.pause(other);
  const from = Date.now();
  count();
  await new Promise((r) => setTimeout(r, step.holdMs));
  const to = Date.now();
  etcd.resume(leader);
  etcd.resume(other);
  for (const file of ctx.stack.logFiles()) {
    for (const e of readActivityLog(file)) {
      if (e.ev === 'active-from' && e.t >= from && e.t < to && BigInt(e.term) > rev) {
        ctx.record.findings.push({ kind: 'PROMOTED_WITHOUT_QUORUM', chain: e.chain, message: `${e.node} active under term ${e.term} during quorum loss (etcd at revision ${rev})` });
      }
    }
  }
}

