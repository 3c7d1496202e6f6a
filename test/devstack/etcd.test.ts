// The devstack etcd against the real Debian binary: start, faults (kill, pause, restart), cleanup.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Etcd3 } from 'etcd3';
import t from 'tap';
import { EtcdCluster, findEtcdBinary } from '../../src/devstack/etcd.js';
import { ManagedProcess, waitFor } from '../../src/devstack/process.js';

const INSTALL = /apt-get install -y etcd-server etcd-client/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** PIDs of every process on the host whose command line mentions `needle`. */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

async function withClient<T>(hosts: string[], fn: (client: Etcd3) => Promise<T>): Promise<T> {
  const client = new Etcd3({
    hosts,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }),
  });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function runningEndpoints(cluster: EtcdCluster): string[] {
  return cluster.members.filter((m) => m.state === 'running').map((m) => m.clientUrl);
}

/** A write may fail while the survivors elect a leader; retry it until a deadline. */
async function putEventually(hosts: string[], key: string, value: string): Promise<void> {
  await waitFor(
    `put ${key} through ${hosts.join(',')}`,
    () => withClient(hosts, async (c) => (await c.put(key).value(value), true)),
    15_000,
    200,
  );
}

/** A serializable read is answered from the member's own store: it proves that member has the data. */
async function localValueEventually(endpoint: string, key: string, want: string): Promise<string> {
  return waitFor(
    `${key}=${want} in the local store of ${endpoint}`,
    () => withClient([endpoint], async (c) => {
      const v = await c.get(key).serializable(true).string();
      return v === want ? v : undefined;
    }),
    15_000,
    200,
  );
}

t.test('single member: start, put/get through etcd3, stop removes process and dir', async (t) => {
  const cluster = await EtcdCluster.start();
  t.teardown(() => cluster.stop());

  t.equal(cluster.members.length, 1);
  const [m] = cluster.members;
  t.match(m, { name: 'm0', state: 'running', clientUrl: /^http:\/\/127\.0\.0\.1:\d+$/, peerUrl: /^http:\/\/127\.0\.0\.1:\d+$/ });
  t.same(cluster.endpoints, [m.clientUrl]);
  t.ok(cluster.dir.startsWith(tmpdir()), 'temp dir under os.tmpdir()');
  t.ok(m.dataDir.startsWith(cluster.dir) && existsSync(m.dataDir), 'data dir inside the temp dir');
  t.ok(pidAlive(m.pid));

  const got = await withClient(cluster.endpoints, async (c) => {
    await c.put('baton/hello').value('world');
    return c.get('baton/hello').string();
  });
  t.equal(got, 'world');
  t.equal(await cluster.leaderIndex(), 0);

  const pid = m.pid;
  await cluster.stop();
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'etcd process is gone');
  t.notOk(existsSync(cluster.dir), 'temp dir removed');
  t.equal(m.state, 'stopped');
});

t.test('three members: lose a follower, then the leader; restarted members catch up', async (t) => {
  const cluster = await EtcdCluster.start({ members: 3 });
  t.teardown(() => cluster.stop());
  t.equal(cluster.endpoints.length, 3);
  t.equal(new Set(cluster.endpoints).size, 3, 'distinct client ports');
  await putEventually(cluster.endpoints, 'k/before', 'v0');

  const leader = await cluster.leaderIndex();
  const follower = (leader + 1) % 3;
  const followerPid = cluster.members[follower].pid;
  await cluster.kill(follower);
  t.equal(cluster.members[follower].state, 'stopped');
  t.notOk(pidAlive(followerPid), 'killed follower is gone');
  await putEventually(runningEndpoints(cluster), 'k/follower-down', 'v1');

  await cluster.restart(follower);
  t.equal(cluster.members[follower].state, 'running');
  t.not(cluster.members[follower].pid, followerPid, 'a new process');
  t.equal(await localValueEventually(cluster.members[follower].clientUrl, 'k/follower-down', 'v1'), 'v1',
    'restarted follower has the write made while it was down');

  const leaderPid = cluster.members[leader].pid;
  await cluster.kill(leader);
  t.notOk(pidAlive(leaderPid), 'killed leader is gone');
  const newLeader = await cluster.leaderIndex();
  t.not(newLeader, leader, 'survivors elected a new leader');
  await putEventually(runningEndpoints(cluster), 'k/leader-down', 'v2');

  await cluster.restart(leader);
  t.equal(await localValueEventually(cluster.members[leader].clientUrl, 'k/leader-down', 'v2'), 'v2',
    'restarted old leader has the write made while it was down');
  const got = await withClient([cluster.members[leader].clientUrl], (c) => c.get('k/before').string());
  t.equal(got, 'v0', 'linearizable read through the restarted member alone');
});

t.test('pause/resume: a paused leader stops answering, the others carry on', async (t) => {
  const cluster = await EtcdCluster.start({ members: 3 });
  t.teardown(() => cluster.stop());

  // Pausing the leader is the harder case: the other two must first elect a new one.
  const paused = await cluster.leaderIndex();
  const pausedUrl = cluster.members[paused].clientUrl;
  cluster.pause(paused);
  t.equal(cluster.members[paused].state, 'paused');
  t.ok(pidAlive(cluster.members[paused].pid), 'paused, not dead');
  await t.rejects(fetch(`${pausedUrl}/health`, { signal: AbortSignal.timeout(500) }), 'paused member does not answer /health');

  // Wait for the election first: a write sent before it is forwarded to the frozen leader and
  // hangs until its deadline.
  const others = [0, 1, 2].filter((i) => i !== paused);
  t.ok(others.includes(await cluster.leaderIndex()), 'the running two elected a leader');
  await Promise.all(others.map((i) => cluster.waitHealthy(i)));
  await putEventually(runningEndpoints(cluster), 'k/paused', 'p1');

  cluster.resume(paused);
  t.equal(cluster.members[paused].state, 'running');
  await cluster.waitHealthy(paused);
  t.equal(await localValueEventually(pausedUrl, 'k/paused', 'p1'), 'p1', 'resumed member caught up');
});

t.test('stop leaves no process behind and touches nothing it did not start', async (t) => {
  const bystander = await ManagedProcess.start({ command: 'sleep', args: ['30'] });
  t.teardown(() => bystander.kill());

  const cluster = await EtcdCluster.start({ members: 3 });
  t.teardown(() => cluster.stop());
  const pids = cluster.members.map((m) => m.pid);
  t.same(pidsMentioning(cluster.dir).sort(), [...pids].sort(), 'exactly the three members run on the temp dir');
  cluster.pause(1); // a stopped process must still be killed

  await cluster.stop();
  await cluster.stop(); // idempotent
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `member pid ${pid} is gone`);
  t.same(pidsMentioning(cluster.dir), [], 'no process mentions the temp dir');
  t.notOk(existsSync(cluster.dir), 'temp dir removed');
  t.ok(cluster.members.every((m) => m.state === 'stopped'));
  await t.rejects(cluster.restart(0), /stopped/, 'a stopped cluster does not restart members');

  t.ok(bystander.running && pidAlive(bystander.pid), 'unrelated child still alive');
  await bystander.kill();
  t.notOk(pidAlive(bystander.pid));
});

t.test('a missing etcd binary is reported with the install command', async (t) => {
  const saved = process.env.BATON_ETCD_BIN;
  t.teardown(() => {
    if (saved === undefined) delete process.env.BATON_ETCD_BIN;
    else process.env.BATON_ETCD_BIN = saved;
  });
  process.env.BATON_ETCD_BIN = '/nonexistent/etcd';
  await t.rejects(EtcdCluster.start(), { message: INSTALL });

  t.throws(() => findEtcdBinary({ PATH: '/nonexistent:/also/missing' }), { message: INSTALL });
  t.match(findEtcdBinary({ PATH: `/nonexistent:${process.env.PATH ?? ''}` }), /\/etcd$/, 'found on PATH');
});
