// `npm run demo`: a real etcd, two Baton replicas and two chains of three simulated sequencers on
// this machine, chain-a in lease mode and chain-b in commit mode. Baton picks the actives; the demo
// kills the active of each chain and shows both failovers as they happen, then kills the replica
// supervising chain-a and shows nothing is missed, and ends with the independent checker's verdict
// over every node's activity log.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkActivity } from '../sim/checker.js';
import { DevStack } from './stack.js';
import { readActivityLog } from './sim.js';
import { waitFor } from './process.js';

const BLOCK_TIME_MS = 250;
const NODE_LEASE_TTL_MS = 4500; // the shortest lease the default settings allow (minNodeLeaseTtlMs)
const start = Date.now();

function say(msg: string): void {
  const s = ((Date.now() - start) / 1000).toFixed(1).padStart(5);
  console.log(`[+${s}s] ${msg}`);
}

function show(replicaId: string, line: string): void {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const chain = j.chain as string | undefined;
  switch (j.msg) {
    case 'leader changed':
      say(`${replicaId}: ${chain} leader ${j.from ?? '(none)'} -> ${j.to}, new term ${j.term}, continuing from head ${j.fromHead}`);
      say(`        why: ${j.reason}`);
      break;
    case 'leader producing':
      say(`${replicaId}: ${chain} ${j.node} is producing under term ${j.term} at head ${j.head}` +
        (typeof j.sinceDetectMs === 'number' ? `, ${Math.round(j.sinceDetectMs)} ms after the failure was detected` : ''));
      break;
    case 'supervising chain':
      say(`${replicaId}: now supervises ${chain}`);
      break;
    case 'etcd lease no longer proven: stopped acting':
      say(`${replicaId}: self-fenced (its etcd lease is no longer proven)`);
      break;
    default:
      if (typeof j.msg === 'string' && chain && (j.level as number) >= 30 && /waiting .* for old leases/.test(j.msg)) {
        say(`${replicaId}: ${chain} ${j.msg}`);
      }
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-demo-'));
  say(`starting etcd, 6 simulated sequencers (block time ${BLOCK_TIME_MS} ms) and 2 Baton replicas in ${dir}`);
  const stack = await DevStack.start({
    dir,
    replicas: 2,
    blockTimeMs: BLOCK_TIME_MS,
    chains: [
      { id: 'chain-a', nodes: ['a1', 'a2', 'a3'], policy: { leaseTtlMs: NODE_LEASE_TTL_MS } },
      // chain-b runs in commit mode: every block is committed to Baton before it is gossiped.
      { id: 'chain-b', nodes: ['b1', 'b2', 'b3'], policy: { leaseTtlMs: NODE_LEASE_TTL_MS, fencingMode: 'commit' } },
    ],
    onBatonLine: show,
  });
  let clean = false;
  try {
    for (const chain of ['chain-a', 'chain-b']) await stack.waitForProducingLeader(chain, 30_000);
    await new Promise((r) => setTimeout(r, 2 * BLOCK_TIME_MS * 4));
    for (const chain of ['chain-a', 'chain-b']) {
      const v = (await stack.api().getChain(chain)).body;
      say(`${chain}: active ${v.leader?.nodeId} (term ${v.leader?.term}), recorded head ${v.unsafeHead?.number ?? 0}, supervised by ${v.supervisor}`);
    }

    // 1. Kill the active of chain-a.
    const before = (await stack.api().getChain('chain-a')).body;
    const victim = before.leader!.nodeId;
    const killedAt = Date.now();
    await stack.simProcess('chain-a', victim).kill();
    say(`killed ${victim}, the active of chain-a, with SIGKILL`);
    const next = await stack.waitForProducingLeader('chain-a', 30_000, victim);
    const firstBlock = await waitFor('the first block of the new term', () =>
      readActivityLog(stack.node('chain-a', next.nodeId).logFile).find((e) => e.ev === 'block' && BigInt(e.term) === next.term), 10_000);
    say(`failover done: ${next.nodeId} made block ${firstBlock.ev === 'block' ? firstBlock.number : '?'} under term ${next.term}, ${firstBlock.t - killedAt} ms after the kill`);
    say('  (lease mode: the new active may start only once the old node lease cannot be valid any more)');

    // 1b. The same on chain-b, in commit mode: no lease to wait out.
    const victimB = (await stack.api().getChain('chain-b')).body.leader!.nodeId;
    const killedBAt = Date.now();
    await stack.simProcess('chain-b', victimB).kill();
    say(`killed ${victimB}, the active of chain-b (commit mode), with SIGKILL`);
    const nextB = await stack.waitForProducingLeader('chain-b', 30_000, victimB);
    const firstBlockB = await waitFor('the first block of the new term', () =>
      readActivityLog(stack.node('chain-b', nextB.nodeId).logFile).find((e) => e.ev === 'block' && BigInt(e.term) === nextB.term), 10_000);
    const committed = (await stack.api().getChain('chain-b')).body.unsafeHead;
    say(`failover done: ${nextB.nodeId} made block ${firstBlockB.ev === 'block' ? firstBlockB.number : '?'} under term ${nextB.term}, ${firstBlockB.t - killedBAt} ms after the kill`);
    say(`  (commit mode: ${victimB} could not publish anything without a commit, so no wait; committed head now ${committed?.number} by ${committed?.nodeId})`);

    // 2. Kill the replica supervising chain-a: the active must not notice.
    const sup = (await stack.api().getChain('chain-a')).body.supervisor!;
    const activeLog = stack.node('chain-a', next.nodeId).logFile;
    const replicaKilledAt = Date.now();
    await stack.replica(sup).kill();
    say(`killed Baton replica ${sup}, the supervisor of chain-a, with SIGKILL`);
    const other = await waitFor('another replica to supervise chain-a', async () => {
      const s = (await stack.api(sup).getChain('chain-a')).body.supervisor;
      return s && s !== sup ? s : undefined;
    }, 30_000, 100);
    say(`${other} took chain-a over ${Date.now() - replicaKilledAt} ms after the kill`);
    await new Promise((r) => setTimeout(r, NODE_LEASE_TTL_MS + 1000));
    const window = readActivityLog(activeLog).filter((e) => e.t >= replicaKilledAt);
    const blocks = window.filter((e) => e.ev === 'block');
    const stops = window.filter((e) => e.ev === 'lease-expired' || e.ev === 'active-until');
    const heights = blocks.map((b) => (b.ev === 'block' ? b.number : 0));
    const contiguous = heights.every((h, i) => i === 0 || h === heights[i - 1]! + 1);
    let maxGap = 0;
    for (let i = 1; i < blocks.length; i++) maxGap = Math.max(maxGap, blocks[i]!.t - blocks[i - 1]!.t);
    say(`${next.nodeId} kept producing under term ${next.term}: ${blocks.length} blocks since the replica died, ` +
      `heights ${contiguous ? 'contiguous' : 'NOT contiguous'}, ${stops.length === 0 ? 'no lease lapse' : 'its LEASE LAPSED'}, ` +
      `largest gap between blocks ${maxGap} ms (block time ${BLOCK_TIME_MS} ms)`);
  } finally {
    say('stopping everything');
    await stack.stop();
    const report = checkActivity(stack.logFiles().map((file) => ({ file, entries: readActivityLog(file) })));
    for (const v of report.violations) say(`VIOLATION ${v.kind} ${v.chain}: ${v.message}`);
    clean = report.violations.length === 0;
    say(`checker over ${report.logs} activity logs: ${report.blocks} blocks, ${report.violations.length} violations -> ${clean ? 'CLEAN' : 'VIOLATIONS FOUND'}`);
    console.log(JSON.stringify({ logs: report.logs, chains: report.chains, blocks: report.blocks, violations: report.violations.length, by_kind: report.byKind }));
    if (clean && !process.env.BATON_KEEP_DEMO) rmSync(dir, { recursive: true, force: true });
  }
  return clean ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
