// Which etcd member a call may go to after failures: a member that failed is skipped while another
// is usable, and when all failed (an election), only the one whose cooldown ends first is tried.
import t from 'tap';
import { GRPCUnavailableError } from 'etcd3';
import { HostCooldown } from '../../../src/adapters/etcd/client.js';

const HOSTS = ['m0', 'm1', 'm2'];

function setup() {
  const cooldown = new HostCooldown(60_000);
  const policies = new Map(HOSTS.map((h) => [h, cooldown.policy(h)]));
  /** Runs one call on `host`: 'sent' if it went through, 'skipped' if the policy refused it. */
  const call = async (host: string, fail = false): Promise<'sent' | 'skipped' | 'failed'> => {
    let sent = false;
    try {
      await policies.get(host)!.execute(() => {
        sent = true;
        if (fail) throw new GRPCUnavailableError('connect ECONNREFUSED');
        return 'ok';
      });
      return 'sent';
    } catch {
      return sent ? 'failed' : 'skipped';
    }
  };
  return { call };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

t.test('a member that failed is skipped while another is usable', async (t) => {
  const { call } = setup();
  t.equal(await call('m0', true), 'failed');
  t.equal(await call('m0'), 'skipped', 'm0 cools down');
  t.equal(await call('m1'), 'sent', 'm1 is usable');
});

t.test('all members cooling: only the one whose cooldown ends first is tried, and a new failure moves it back', async (t) => {
  const { call } = setup();
  t.equal(await call('m0', true), 'failed', 'm0 dies');
  await tick();
  t.equal(await call('m1', true), 'failed', 'm1 fails during the election');
  await tick();
  t.equal(await call('m2', true), 'failed', 'm2 too');
  t.same([await call('m1'), await call('m2')], ['skipped', 'skipped'], 'm1 and m2 are skipped: their cooldowns end later');
  t.equal(await call('m0', true), 'failed', 'm0 (earliest) is tried, and fails again');
  t.same([await call('m0'), await call('m1'), await call('m2')], ['skipped', 'sent', 'skipped'], 'after m0 failed again, m1 is next');
});

t.test('a single member is never skipped', async (t) => {
  const cooldown = new HostCooldown(60_000);
  const only = cooldown.policy('m0');
  await t.rejects(only.execute(() => Promise.reject(new GRPCUnavailableError('down'))));
  t.equal(await only.execute(() => 'ok'), 'ok', 'the next call goes through');
});
