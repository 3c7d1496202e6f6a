// Switching a chain's fencing mode as an operation, on a real stack (real etcd, `baton serve`, one
// `baton sim` per node): bad requests are refused with stable codes, audited, and change nothing;
// lease -> commit over REST ends with a new commit-mode term for the same active, which goes on
// producing and committing; asking for the mode the chain is in succeeds with no new term; a
// paused chain refuses the switch (PAUSED) and keeps its mode and term; commit -> lease through the
// real `baton ctl` process. The independent checker reads every node's log at the end. Who may
// call it is the permission matrix's business (test/security/matrix.test.ts); the refusal under a
// break-glass override is in test/adapters/http/operations.test.ts.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Etcd3 } from 'etcd3';
import { waitFor } from '../../src/devstack/process.js';
import type { ChainViewJson } from '../../src/devstack/baton.js';
import { assertOneAuditRecord } from '../security/audit-assert.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { operationEnded, postJson } from '../helpers/rest.js';

const BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));
const CHAIN = 'chain-m';
const NODES = ['m1', 'm2', 'm3'];
const PREFIX = '/baton/';

const stack = await startStack(t, { replicas: 1, chains: [{ id: CHAIN, nodes: NODES }], blockTimeMs: 200 });
const etcd = new Etcd3({ hosts: stack.etcd.endpoints });
t.teardown(() => etcd.close());
const url = stack.replicas[0]!.url;

interface OperationBody {
  code?: string;
  id?: string;
  state?: string;
  params?: { kind: string; mode?: string };
  result?: { term?: string; nodeId?: string; detail?: string } | null;
  error?: { code: string; message: string } | null;
}

const post = (path: string, body: unknown) => postJson<OperationBody>(url, path, body);
const finished = (id: string) => operationEnded<OperationBody>(stack, id);

async function view(): Promise<ChainViewJson> {
  return (await stack.api().getChain(CHAIN)).body;
}

async function operationCount(): Promise<number> {
  return (await stack.api().request<{ operations: unknown[] }>('GET', `/v1/operations?chain=${CHAIN}`)).body.operations.length;
}

async function termCount(): Promise<number> {
  return (await stack.api().history(CHAIN)).body.terms.length;
}

/** The active keeps producing under `term`: `count` more blocks of that term than `after` in its log. */
async function producesUnder(active: string, term: string, count: number): Promise<void> {
  const log = stack.node(CHAIN, active).logFile;
  const before = blocksOf(log).filter((b) => b.term === term).length;
  await waitFor(`${count} more blocks of term ${term} from ${active}`, () =>
    blocksOf(log).filter((b) => b.term === term).length >= before + count ? true : undefined, 15_000);
}

function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATON_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'ctl', '--url', url, ...args], { encoding: 'utf8', timeout: 60_000, env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function assertModeAndTerm(t: Test, mode: string, term: string, what: string): Promise<void> {
  const v = await view();
  t.equal(v.spec.policy.fencingMode, mode, `${what}: the spec is still in ${mode} mode`);
  t.equal(v.leader?.term, term, `${what}: the term is unchanged`);
  t.equal(v.leader?.mode, mode, `${what}: the leader record is still in ${mode} mode`);
}

const first = await stack.waitForProducingLeader(CHAIN, 30_000);
const active = first.nodeId;

t.test('bad requests are refused with a stable code, audited, and change nothing', async (t) => {
  const opsBefore = await operationCount();
  const specBefore = (await view()).spec;
  const cases: [string, string, unknown, number, string][] = [
    ['an unknown mode', CHAIN, { mode: 'raft', reason: 'x' }, 400, 'INVALID_ARGUMENT'],
    ['no mode', CHAIN, { reason: 'x' }, 400, 'INVALID_ARGUMENT'],
    ['no reason', CHAIN, { mode: 'commit' }, 400, 'INVALID_ARGUMENT'],
    ['an unknown field', CHAIN, { mode: 'commit', reason: 'x', force: true }, 400, 'INVALID_ARGUMENT'],
    ['an unknown chain', 'chain-zz', { mode: 'commit', reason: 'x' }, 404, 'NOT_FOUND'],
  ];
  for (const [what, chain, body, status, code] of cases) {
    const res = await post(`/v1/chains/${chain}/fencing-mode`, body);
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.body.code, code, `${what}: ${code}`);
    await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'SetFencingMode', outcome: 'refused' });
  }
  t.equal(await operationCount(), opsBefore, 'no operation was created');
  t.same((await view()).spec, specBefore, 'the spec is unchanged');
  await assertModeAndTerm(t, 'lease', first.term.toString(), 'after the refusals');
});

t.test('lease -> commit over REST: a new commit-mode term for the same active, which goes on producing', async (t) => {
  const res = await post(`/v1/chains/${CHAIN}/fencing-mode`, { mode: 'commit', reason: 'CHG-42: exact unsafe head' });
  t.equal(res.status, 202, 'accepted');
  t.match(res.body.params, { kind: 'set-fencing-mode', mode: 'commit' });
  const audit = await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'SetFencingMode', outcome: 'accepted' });
  t.equal(audit?.operationId, res.body.id, 'the audit record names the operation');

  const done = await finished(res.body.id!);
  t.equal(done.state, 'succeeded', `succeeded (${done.error?.message ?? done.result?.detail})`);
  t.equal(done.result?.nodeId, active, 'the same node');
  t.ok(BigInt(done.result?.term ?? '0') > first.term, `under a new term ${done.result?.term} > ${first.term}`);

  const v = await view();
  t.equal(v.spec.policy.fencingMode, 'commit', 'the spec is in commit mode');
  t.match(v.leader, { nodeId: active, mode: 'commit', term: done.result?.term }, 'the leader record is the new commit-mode term');
  await producesUnder(active, done.result!.term!, 5);
  const committed = await waitFor('a head committed under the new term', async () => {
    const h = (await view()).unsafeHead;
    return h && h.term === done.result!.term ? h : undefined;
  }, 10_000);
  t.equal(committed.nodeId, active, 'the active commits its own blocks');
});

t.test('asking for the mode the chain is in succeeds with no new term', async (t) => {
  const before = await view();
  const terms = await termCount();
  const res = await post(`/v1/chains/${CHAIN}/fencing-mode`, { mode: 'commit', reason: 'again' });
  t.equal(res.status, 202);
  const done = await finished(res.body.id!);
  t.equal(done.state, 'succeeded');
  t.equal(done.result?.detail, 'already commit');
  t.equal(done.result?.term, before.leader?.term, 'the result names the current term');
  t.equal(await termCount(), terms, 'no term was written');
  t.equal((await view()).leader?.term, before.leader?.term, 'the leader term is unchanged');
});

t.test('a paused chain refuses the switch: PAUSED, mode and term unchanged', async (t) => {
  const before = await view();
  const pause = await post(`/v1/chains/${CHAIN}/pause`, { reason: 'freeze for the test' });
  t.equal((await finished(pause.body.id!)).state, 'succeeded', 'paused');
  const res = await post(`/v1/chains/${CHAIN}/fencing-mode`, { mode: 'lease', reason: 'while paused' });
  t.equal(res.status, 202, 'accepted: the supervisor judges the pause');
  const done = await finished(res.body.id!);
  t.equal(done.state, 'failed');
  t.equal(done.error?.code, 'PAUSED');
  await assertModeAndTerm(t, 'commit', before.leader!.term, 'after the refusal');
  const resume = await post(`/v1/chains/${CHAIN}/resume`, { reason: 'thaw' });
  t.equal((await finished(resume.body.id!)).state, 'succeeded', 'resumed');
});

t.test('commit -> lease through `baton ctl fencing-mode`: a new lease-mode term, the same active', async (t) => {
  const before = await view();
  const r = await ctl('fencing-mode', CHAIN, 'lease', '--reason', 'CHG-43: back to lease', '--json');
  t.equal(r.code, 0, r.stderr);
  const op = JSON.parse(r.stdout) as OperationBody;
  t.equal(op.state, 'succeeded', 'ctl waited for the operation to succeed');
  t.equal(op.result?.nodeId, active);
  t.ok(BigInt(op.result?.term ?? '0') > BigInt(before.leader!.term), `a new term ${op.result?.term} > ${before.leader!.term}`);
  const v = await view();
  t.equal(v.spec.policy.fencingMode, 'lease');
  t.match(v.leader, { nodeId: active, mode: 'lease', term: op.result?.term });
  await producesUnder(active, op.result!.term!, 5);

  const bad = await ctl('fencing-mode', CHAIN, 'raft');
  t.equal(bad.code, 2, 'a bad mode is a usage error, nothing sent');
  t.equal((await view()).leader?.term, op.result?.term, 'and changes nothing');
});

t.test('the checker finds no violation over every node log', async (t) => {
  assertCheckerClean(t, stack);
});
