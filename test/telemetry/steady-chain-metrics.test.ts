// What /metrics shows of a healthy commit-mode chain. The probe counter counts the control loop's
// probes; a scheduled switchover shows among the unfinished operations until it is cancelled. The
// unsafe head gauges follow its commits. In commit mode the
// nodes move the recorded head with every block, not the supervisor, whose own copy of the chain
// is re-read only every few seconds; the gauges read the head the chains/ watch last delivered.
// Without that, the head age climbs past 3 block times between re-reads and the
// BatonUnsafeHeadStalled alert (deploy/prometheus/alerts.yml) fires on a chain that is fine.
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import type { BatonProcess } from '../../src/devstack/baton.js';
import { postJson } from '../helpers/rest.js';
import { startStack } from '../helpers/stack.js';
import { sample } from './prom-text.js';

const CHAIN = 'chain-c';
const BLOCK_TIME_MS = 1000;
/** Longer than two of the supervisor's full re-reads (5 s each). */
const WATCH_MS = 12_000;

async function scrape(replica: BatonProcess): Promise<string> {
  const res = await fetch(`${replica.opsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

t.test('commit mode: head number and age on /metrics keep up with the commits; probes are counted', async (t) => {
  const stack = await startStack(t, { replicas: 1, blockTimeMs: BLOCK_TIME_MS, chains: [{ id: CHAIN, nodes: ['c1', 'c2'], policy: { fencingMode: 'commit' } }] });
  await stack.waitForProducingLeader(CHAIN, 30_000);
  const replica = stack.replicas[0]!;
  const labels = { chain: CHAIN };
  const first = await waitFor('a committed head on /metrics', async () => {
    const text = await scrape(replica);
    const n = sample(text, 'baton_chain_unsafe_head_number', labels);
    return n !== undefined && n > 0 ? text : undefined;
  }, 20_000);
  const threshold = 3 * sample(first, 'baton_chain_block_time_seconds', labels)!;
  t.equal(threshold, 3 * BLOCK_TIME_MS / 1000, "the alert's threshold: 3 block times");

  const probesAtFirst = sample(first, 'baton_node_probes_total', { result: 'ok' }) ?? 0;
  let maxAge = 0;
  let scrapes = 0;
  const numbers: number[] = [];
  const until = Date.now() + WATCH_MS;
  while (Date.now() < until) {
    const text = await scrape(replica);
    maxAge = Math.max(maxAge, sample(text, 'baton_chain_unsafe_head_age_seconds', labels) ?? Infinity);
    numbers.push(sample(text, 'baton_chain_unsafe_head_number', labels) ?? -1);
    scrapes++;
    await new Promise((r) => setTimeout(r, 200));
  }
  const last = await scrape(replica);
  const probes = (sample(last, 'baton_node_probes_total', { result: 'ok' }) ?? 0) - probesAtFirst;
  t.ok(probes >= WATCH_MS / 1000, `the loop's probes are counted: ${probes} over the window`);
  const api = await stack.api().getChain<{ unsafeHead: { number: number } | null }>(CHAIN);
  t.ok(scrapes >= 20, `${scrapes} scrapes over ${WATCH_MS} ms`);
  t.ok(maxAge < threshold, `the head age stayed below the stall alert's threshold: max ${maxAge} s < ${threshold} s`);
  const distinct = new Set(numbers).size;
  t.ok(distinct >= WATCH_MS / BLOCK_TIME_MS / 2, `the head number moved with the blocks: ${distinct} distinct values in ${scrapes} scrapes`);
  t.ok(numbers.every((n, i) => i === 0 || n >= numbers[i - 1]!), 'and never went back');
  t.ok(api.body.unsafeHead && api.body.unsafeHead.number >= numbers[numbers.length - 1]!, 'never ahead of etcd');

  const scheduled = { kind: 'switchover', state: 'scheduled' };
  const unfinished = async () => sample(await scrape(replica), 'baton_operations_unfinished', scheduled);
  t.equal(await unfinished(), undefined, 'no unfinished operation yet');
  const at = new Date(Date.now() + 3_600_000).toISOString();
  const sw = await postJson<{ id: string }>(replica.url, `/v1/chains/${CHAIN}/switchover`, { scheduledAt: at, reason: 'maintenance window' });
  t.equal(sw.status, 202, 'a switchover scheduled an hour ahead');
  t.equal(await waitFor('the scheduled switchover on /metrics', async () => ((await unfinished()) === 1 ? 1 : undefined), 10_000, 100), 1, 'one scheduled switchover');
  const cancel = await postJson<{ id: string }>(replica.url, `/v1/chains/${CHAIN}/switchover/cancel`, { reason: 'window moved' });
  t.equal(cancel.status, 202, 'cancelled');
  await waitFor('no unfinished operation on /metrics', async () => ((await unfinished()) === undefined ? true : undefined), 10_000, 100);
  t.pass('gone once cancelled');
});
