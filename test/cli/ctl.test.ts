// `baton ctl`: argument parsing and formatting as pure functions; exit codes and operation waiting
// in-process against a scripted REST server; then the built CLI (`npm run build` first) as a child
// process against a real stack (etcd, 3 simulated nodes, 2 replicas).
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { runCtl, type CtlIo } from '../../src/cli/ctl.js';
import { SseDecoder } from '../../src/cli/ctl/api.js';
import { DEFAULT_URL, parseCtlArgs, parseTime } from '../../src/cli/ctl/args.js';
import { formatAge, formatChainList, formatChainView, formatHistory, formatPlan, table } from '../../src/cli/ctl/format.js';
import { waitFor } from '../../src/devstack/process.js';
import { startStack } from '../helpers/stack.js';

const BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));
const NOW = Date.parse('2030-01-02T03:04:05.000Z');
const ENV = { USER: 'alice' };

function ok(argv: string[], env: Record<string, string> = ENV) {
  const p = parseCtlArgs(argv, env, NOW, () => 'key-1');
  if (p.kind !== 'ok') throw new Error(`expected ok for ${argv.join(' ')}, got ${JSON.stringify(p)}`);
  return p;
}

function usageError(argv: string[]): string {
  const p = parseCtlArgs(argv, ENV, NOW, () => 'key-1');
  if (p.kind !== 'usage-error') throw new Error(`expected a usage error for ${argv.join(' ')}, got ${JSON.stringify(p)}`);
  return p.message;
}

t.test('parse: defaults, globals anywhere, command options', async (t) => {
  const p = ok(['list']);
  t.same(p.global, { url: DEFAULT_URL, json: false, timeoutMs: 10_000, reason: 'baton ctl by alice', idempotencyKey: 'key-1', wait: true, waitTimeoutMs: 120_000 });
  t.same(p.command, { name: 'list', filter: undefined });
  t.equal(ok(['list'], { BATON_URL: 'http://baton:9000/' }).global.url, 'http://baton:9000', 'BATON_URL, trailing slash dropped');
  t.equal(ok(['list', '--url', 'https://b.example/api'], { BATON_URL: 'http://x:1' }).global.url, 'https://b.example/api', '--url wins over BATON_URL');
  t.equal(ok(['list'], {}).global.reason, 'baton ctl by unknown');

  const f = ok(['--json', 'failover', 'chain-a', '--to=n2', '--reason', 'drill', '--no-wait', '--timeout', '500', '--idempotency-key', 'k-42']);
  t.same(f.command, { name: 'failover', chain: 'chain-a', to: 'n2', dryRun: false });
  t.same(f.global, { url: DEFAULT_URL, json: true, timeoutMs: 500, reason: 'drill', idempotencyKey: 'k-42', wait: false, waitTimeoutMs: 120_000 });
  t.same(ok(['failover', 'chain-a', '--dry-run']).command, { name: 'failover', chain: 'chain-a', to: undefined, dryRun: true });
  t.same(ok(['switchover', 'chain-a', '--at', '10m']).command, { name: 'switchover', chain: 'chain-a', to: undefined, at: '2030-01-02T03:14:05.000Z' });
  t.same(ok(['pause', 'chain-a', '--until', '2030-01-03T00:00:00+01:00']).command, { name: 'pause', chain: 'chain-a', until: '2030-01-02T23:00:00.000Z' });
  t.same(ok(['pause', 'chain-a']).command, { name: 'pause', chain: 'chain-a', until: undefined });
  t.same(ok(['history', 'chain-a', '--limit', '5']).command, { name: 'history', chain: 'chain-a', limit: 5 });
  t.same(ok(['override', 'chain-a', 'n3', '--reason', 'INC-1']).command, { name: 'override', chain: 'chain-a', node: 'n3', rollbackHead: false });
  t.same(ok(['override', 'chain-a', 'n3', '--rollback-head', '--reason', 'INC-1']).command, { name: 'override', chain: 'chain-a', node: 'n3', rollbackHead: true });
  t.same(ok(['clear-override', 'chain-a', '--reason', 'INC-1 over']).command, { name: 'clear-override', chain: 'chain-a' });
  t.same(ok(['fencing-mode', 'chain-a', 'commit', '--reason', 'CHG-42']).command, { name: 'fencing-mode', chain: 'chain-a', mode: 'commit' });
  t.same(ok(['fencing-mode', 'chain-a', 'lease']).command, { name: 'fencing-mode', chain: 'chain-a', mode: 'lease' });
  t.same(ok(['settings', '--auto-failover', 'off', '--max-concurrent', '4']).command, { name: 'settings', autoFailover: false, maxConcurrent: 4 });
  t.same(ok(['settings']).command, { name: 'settings', autoFailover: undefined, maxConcurrent: undefined });
  t.same(ok(['events', '--follow', '--chain', 'chain-b']).command, { name: 'events', follow: true, chain: 'chain-b', after: undefined });
  t.same(ok(['events', '--after', '1234-0']).command, { name: 'events', follow: false, chain: undefined, after: '1234-0' });
  t.same(ok(['list', '--filter', 'degraded']).command, { name: 'list', filter: 'degraded' });
  t.same(ok(['operation', 'op-1700000000000-0a1b2c3d']).command, { name: 'operation', id: 'op-1700000000000-0a1b2c3d' });
  t.same(parseCtlArgs(['failover', '--help'], ENV, NOW), { kind: 'help' });
  t.equal(parseCtlArgs(['list'], ENV, NOW).kind, 'ok', 'a random idempotency key by default');
});

t.test('parse: usage errors name the problem', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /no command/],
    [['lst'], /unknown command "lst"/],
    [['status'], /status: missing CHAIN/],
    [['status', 'a', 'b'], /unexpected argument "b"/],
    [['status', 'Chain_A'], /CHAIN "Chain_A" is not valid/],
    [['failover', 'chain-a', '--to'], /--to needs a value/],
    [['failover', 'chain-a', '--to', 'bad/node'], /--to "bad\/node" is not valid/],
    [['failover', 'chain-a', '--dry-run=yes'], /--dry-run takes no value/],
    [['list', '--to', 'n1'], /--to is an option of "failover", not of "list"/],
    [['list', '--bogus'], /unknown option --bogus/],
    [['events', '--after', 'yesterday'], /--after "yesterday" is not valid/],
    [['list', '--json', '--json'], /--json given twice/],
    [['list', '--url', 'localhost:8080'], /--url must be an http\(s\) URL/],
    [['list', '--url', 'ftp://h/'], /--url must be an http\(s\) URL/],
    [['list', '--timeout', '0'], /--timeout must be between 1 and/],
    [['list', '--timeout', '1.5'], /--timeout must be a whole number/],
    [['list', '--filter', 'sad'], /--filter must be one of/],
    [['pause', 'chain-a', '--until', 'tomorrow'], /--until must be an RFC 3339 time/],
    [['pause', 'chain-a', '--until', '2030-02-30T00:00:00Z'], /--until must be an RFC 3339 time/],
    [['switchover', 'chain-a', '--at', '2030-01-02T03:04:05'], /--at must be an RFC 3339 time/],
    [['resume', 'chain-a', '--reason', ' '], /--reason must not be empty/],
    [['override', 'chain-a', 'n3'], /override: --reason TEXT is required/],
    [['override', 'chain-a', '--reason', 'x'], /override: missing NODE/],
    [['override', 'chain-a', 'n 3', '--reason', 'x'], /NODE/],
    [['override', 'chain-a', 'n3', '--reason', 'x', '--rollback-head=yes'], /rollback-head/],
    [['failover', 'chain-a', '--rollback-head', '--reason', 'x'], /rollback-head/],
    [['clear-override', 'chain-a'], /clear-override: --reason TEXT is required/],
    [['fencing-mode', 'chain-a'], /fencing-mode: missing MODE/],
    [['fencing-mode', 'chain-a', 'raft'], /fencing-mode: MODE must be lease or commit, got "raft"/],
    [['fencing-mode', 'chain-a', 'COMMIT'], /MODE must be lease or commit/],
    [['fencing-mode', 'Chain_A', 'commit'], /CHAIN "Chain_A" is not valid/],
    [['fencing-mode', 'chain-a', 'commit', 'lease'], /unexpected argument "lease"/],
    [['resume', 'chain-a', '--idempotency-key', 'has space'], /--idempotency-key/],
    [['settings', '--auto-failover', 'maybe'], /--auto-failover must be on or off/],
    [['settings', '--max-concurrent', '0'], /--max-concurrent must be between 1 and 1000/],
    [['history', 'chain-a', '--limit', '5000'], /--limit must be between 1 and 1000/],
  ];
  for (const [argv, re] of cases) t.match(usageError(argv), re, argv.join(' ') || '(nothing)');
  t.throws(() => parseTime('--at', 'soon', NOW));
  t.equal(parseTime('--at', '+90s', NOW), '2030-01-02T03:05:35.000Z');
  t.equal(parseTime('--at', '1d', NOW), '2030-01-03T03:04:05.000Z');
});

t.test('format: aligned columns, no trailing spaces, no colour unless asked', async (t) => {
  t.equal(table(['A', 'LONG'], [['xyz', '1'], ['k', '']]), 'A    LONG\nxyz  1\nk');
  t.equal(table(['A', 'B'], [['1', '2']], { color: true }), '\x1b[1mA  B\x1b[0m\n1  2');
  t.same([0, 42, 185, 7800, 360_000, -5].map(formatAge), ['0s', '42s', '3m05s', '2h10m', '4d04h', '0s']);

  const list = formatChainList([
    { id: 'chain-a', leader: 'a1', term: '12345', headNumber: 880, supervisor: 'r1', nodes: 3, fencingMode: 'lease', paused: false, states: [], ageS: 1 },
    { id: 'chain-long-name', leader: null, term: null, headNumber: null, supervisor: null, nodes: 2, fencingMode: 'lease', paused: true, states: ['leaderless', 'paused'] },
  ]);
  t.equal(
    list,
    [
      'CHAIN            LEADER  TERM   HEAD  AGE  STATE',
      'chain-a          a1      12345  880   1s   ok',
      'chain-long-name  -       -      -     -    leaderless,paused',
    ].join('\n'),
  );
  t.equal(formatChainList([]), 'no chains');

  const history = formatHistory([
    { term: '20', nodeId: 'a2', previousNodeId: 'a1', fromHead: 99, reason: 'operator failover', atMs: NOW, supervisor: 'r1' },
    { term: '7', nodeId: 'a1', previousNodeId: null, fromHead: 0, reason: 'bootstrap', atMs: NOW - 60_000, supervisor: 'r2' },
  ]);
  t.equal(
    history,
    [
      'TERM  NODE  PREVIOUS  FROM-HEAD  AT                    SUPERVISOR  REASON',
      '20    a2    a1        99         2030-01-02T03:04:05Z  r1          operator failover',
      '7     a1    -         0          2030-01-02T03:03:05Z  r2          bootstrap',
    ].join('\n'),
  );

  const node = (id: string, role: string, eligible: boolean, reasons: string[]) => ({
    id, role, reachable: true, healthy: true, producing: role === 'active', term: '7', headNumber: 10, lag: 0, eligible, reasons,
  });
  const plan = formatPlan({ from: 'a1', to: 'a2', reason: 'would fail over from a1 to a2', nodes: [node('a1', 'active', false, []), node('a2', 'standby', true, []), node('a3', 'standby', false, ['lagging 9 blocks'])] });
  t.match(plan, /^plan: fail over from a1 to a2\nreason: would fail over from a1 to a2\n/);
  t.match(plan, /a3\s+standby\s+yes\s+10\s+0\s+no\s+lagging 9 blocks/);
  t.match(plan, /nothing was changed/);
  t.match(formatPlan({ from: 'a1', to: null, reason: 'no eligible standby', nodes: [] }), /^plan: no failover possible/);

  const view = (specMode: string | undefined, leaderMode: string | undefined) => formatChainView({
    id: 'chain-a',
    leader: { nodeId: 'a1', term: '20', reason: 'elected', sinceMs: NOW, fromHead: 0, ...(leaderMode ? { mode: leaderMode } : {}) },
    ...(specMode ? { spec: { policy: { fencingMode: specMode } } } : {}),
    unsafeHead: null, supervisor: 'r1', nodes: [], lastFailover: null, decision: null,
  }, NOW);
  t.match(view('commit', 'commit'), /\nfencing\s+commit\n/, 'the fencing mode, under the leader');
  t.match(view('commit', 'lease'), /\nfencing\s+commit \(term 20 is still lease mode: switching\)\n/, 'a switch under way says so');
  t.notMatch(view(undefined, undefined), /fencing/, 'an API that sends neither: no line');
});

t.test('SSE decoder: split chunks, multi-line data, comments', async (t) => {
  const d = new SseDecoder();
  t.same(d.push(': keepalive\n\nid: 5-0\nevent: paused\ndata: {"a":'), []);
  t.same(d.push('1}\n\nid: 6-0\r\ndata: x\r\ndata: y\r\n\r\n'), [
    { id: '5-0', event: 'paused', data: '{"a":1}' },
    { id: '6-0', event: 'message', data: 'x\ny' },
  ]);
});

// ---- in-process against a scripted REST server: exit codes, waiting, idempotency ----

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}
type Route = (req: Seen) => { status: number; body?: unknown; delayMs?: number; sse?: string; end?: boolean };

async function fakeBaton(t: Test, routes: Record<string, Route>): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : undefined };
      seen.push(s);
      const route = routes[`${s.method} ${s.url.split('?')[0]}`];
      const r = route ? route(s) : { status: 404, body: { code: 'NOT_FOUND', message: `no route ${s.method} ${s.url}`, details: {}, requestId: 'rq' } };
      setTimeout(() => {
        if (r.sse !== undefined) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(r.sse);
          if (r.end) res.end(); // else left open, as a live stream is
          return;
        }
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body === undefined ? '' : JSON.stringify(r.body));
      }, r.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function ctlIn(url: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CtlIo = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`), env: ENV, isTTY: false, nowMs: () => Date.now(), fetch: (i, init) => fetch(i, init) };
  const code = await runCtl(['--url', url, ...argv], io);
  return { code, out, err };
}

const op = (state: string, extra: object = {}) => ({
  id: 'op-1-abc',
  chainId: 'chain-a',
  params: { kind: 'failover', reason: 'r' },
  state,
  steps: [{ name: 'write-leader', state: 'done', at: '', atMs: NOW, detail: 'term 9' }],
  result: null,
  error: null,
  ...extra,
});

t.test('mutations wait for the operation; failed exits 1 with its error', async (t) => {
  let polls = 0;
  const { url, seen } = await fakeBaton(t, {
    'POST /v1/chains/chain-a/failover': () => ({ status: 202, body: op('pending') }),
    'GET /v1/operations/op-1-abc': () =>
      ++polls < 3 ? { status: 200, body: op('running') } : { status: 200, body: op('succeeded', { result: { nodeId: 'a2', term: '9', detail: 'a2 active' } }) },
  });
  const r = await ctlIn(url, ['failover', 'chain-a', '--to', 'a2', '--reason', 'drill', '--idempotency-key', 'k1']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /failover chain-a: succeeded/);
  t.match(r.out, /result: a2 active\s+\(leader a2, term 9\)/);
  t.same(seen[0]!.body, { candidate: 'a2', reason: 'drill' });
  t.equal(seen[0]!.headers['idempotency-key'], 'k1');
  t.match(seen[1]!.url, /^\/v1\/operations\/op-1-abc\?wait=\d+$/);

  const failing = await fakeBaton(t, {
    'POST /v1/chains/chain-a/pause': () => ({ status: 202, body: op('failed', { error: { code: 'NOT_ELIGIBLE', message: 'no standby' } }) }),
  });
  const f = await ctlIn(failing.url, ['pause', 'chain-a']);
  t.equal(f.code, 1);
  t.equal(f.err, 'error: NOT_ELIGIBLE: no standby\n');
  t.same(failing.seen[0]!.body, { reason: 'baton ctl by alice' });
});

t.test('override and clear-override post the break-glass requests', async (t) => {
  const { url, seen } = await fakeBaton(t, {
    'POST /v1/chains/chain-a/override': () => ({ status: 202, body: op('succeeded', { result: { nodeId: 'a3', term: '12', detail: 'a3 producing' } }) }),
    'POST /v1/chains/chain-a/override/clear': () => ({ status: 202, body: op('succeeded', { result: { detail: 'override cleared' } }) }),
  });
  const r = await ctlIn(url, ['override', 'chain-a', 'a3', '--reason', 'INC-7']);
  t.equal(r.code, 0, r.err);
  t.same(seen[0]!.body, { nodeId: 'a3', reason: 'INC-7' });
  const c = await ctlIn(url, ['clear-override', 'chain-a', '--reason', 'INC-7 over']);
  t.equal(c.code, 0, c.err);
  t.same(seen[1]!.body, { reason: 'INC-7 over' });
  const rb = await ctlIn(url, ['override', 'chain-a', 'a3', '--reason', 'INC-8', '--rollback-head']);
  t.equal(rb.code, 0, rb.err);
  t.same(seen[2]!.body, { nodeId: 'a3', reason: 'INC-8', rollbackHead: true }, '--rollback-head sends rollbackHead: true');
});

t.test('fencing-mode posts the mode and the reason, and waits for the operation', async (t) => {
  const { url, seen } = await fakeBaton(t, {
    'POST /v1/chains/chain-a/fencing-mode': () => ({ status: 202, body: op('succeeded', { result: { nodeId: 'a1', term: '15', detail: 'a1 leads under term 15 in commit mode' } }) }),
  });
  const r = await ctlIn(url, ['fencing-mode', 'chain-a', 'commit', '--reason', 'CHG-42']);
  t.equal(r.code, 0, r.err);
  t.same(seen[0]!.body, { mode: 'commit', reason: 'CHG-42' });
  t.match(r.out, /term 15/);
});

t.test('--no-wait prints the operation id; an unfinished wait exits 3', async (t) => {
  const { url, seen } = await fakeBaton(t, {
    'POST /v1/chains/chain-a/resume': () => ({ status: 202, body: op('pending') }),
    'GET /v1/operations/op-1-abc': () => ({ status: 200, body: op('running'), delayMs: 50 }),
  });
  const r = await ctlIn(url, ['resume', 'chain-a', '--no-wait']);
  t.equal(r.code, 0);
  t.match(r.out, /^operation op-1-abc pending/);
  t.equal(seen.length, 1, 'nothing polled');
  const j = await ctlIn(url, ['resume', 'chain-a', '--no-wait', '--json']);
  t.equal((JSON.parse(j.out) as { id: string }).id, 'op-1-abc');
  const w = await ctlIn(url, ['resume', 'chain-a', '--wait-timeout', '300']);
  t.equal(w.code, 3);
  t.match(w.err, /^error: WAIT_TIMEOUT: operation op-1-abc is still running/);
});

t.test('refusals exit 1, 5xx and timeouts exit 3, dry run with no target exits 1', async (t) => {
  const { url } = await fakeBaton(t, {
    'GET /v1/chains/nope': () => ({ status: 404, body: { code: 'NOT_FOUND', message: 'chain nope does not exist', details: {}, requestId: 'x' } }),
    'GET /v1/chains/broken': () => ({ status: 503, body: { code: 'STORE_UNAVAILABLE', message: 'etcd unreachable', details: {}, requestId: 'x' } }),
    'GET /v1/chains/slow': () => ({ status: 200, body: {}, delayMs: 2000 }),
    'POST /v1/chains/chain-a/failover': () => ({ status: 200, body: { plan: { from: 'a1', to: null, reason: 'no eligible standby', nodes: [] } } }),
  });
  t.same(await ctlIn(url, ['status', 'nope']), { code: 1, out: '', err: 'error: NOT_FOUND: chain nope does not exist\n' });
  t.same(await ctlIn(url, ['status', 'broken']), { code: 3, out: '', err: 'error: STORE_UNAVAILABLE: etcd unreachable\n' });
  const slow = await ctlIn(url, ['status', 'slow', '--timeout', '200']);
  t.equal(slow.code, 3);
  t.match(slow.err, /^error: TIMEOUT: GET \/v1\/chains\/slow: no answer .* within 200 ms/);
  const dry = await ctlIn(url, ['failover', 'chain-a', '--dry-run']);
  t.equal(dry.code, 1);
  t.match(dry.out, /plan: no failover possible/);
});

t.test('events: what arrives within --timeout, then exit 0', async (t) => {
  const { url, seen } = await fakeBaton(t, {
    'GET /v1/events': () => ({
      status: 200,
      sse: 'id: 10-0\nevent: paused\ndata: {"id":"10-0","type":"paused","chainId":"chain-a","data":{"reason":"drill"}}\n\n',
    }),
  });
  const started = Date.now();
  const r = await ctlIn(url, ['events', '--json', '--timeout', '400', '--chain', 'chain-a']);
  t.equal(r.code, 0, r.err);
  t.ok(Date.now() - started >= 350, 'read until --timeout');
  t.same(JSON.parse(r.out), { id: '10-0', type: 'paused', chainId: 'chain-a', data: { reason: 'drill' } });
  t.equal(seen[0]!.url, '/v1/events?chain=chain-a');
  const human = await ctlIn(url, ['events', '--timeout', '200']);
  t.match(human.out, /Z {2}paused {2}chain-a {2}reason=drill\n$/);
});

t.test('events --follow reconnects from the last event id', async (t) => {
  let n = 0;
  const event = (id: string) => `id: ${id}\nevent: leader-changed\ndata: {"id":"${id}","type":"leader-changed","chainId":"chain-a","data":{"nodeId":"a2"}}\n\n`;
  const { url, seen } = await fakeBaton(t, {
    'GET /v1/events': () =>
      ++n === 1
        ? { status: 200, sse: `retry: 2000\n\n${event('10-0')}`, end: true }
        : n === 2
          ? { status: 200, sse: event('11-0'), end: true }
          : { status: 400, body: { code: 'INVALID_ARGUMENT', message: 'enough', details: {}, requestId: 'x' } },
  });
  const r = await ctlIn(url, ['events', '--follow', '--json']);
  t.equal(r.code, 1, 'a refusal ends --follow');
  t.same(r.out.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id), ['10-0', '11-0']);
  t.same(seen.map((s) => s.headers['last-event-id']), [undefined, '10-0', '11-0']);
  t.equal(r.err, 'error: INVALID_ARGUMENT: enough\n');
});

// ---- the built CLI as a child process ----

function ctl(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATON_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'ctl', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...clean, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('CLI: usage errors exit 2 before any request; an unreachable Baton exits 3', async (t) => {
  const { url, seen } = await fakeBaton(t, {});
  for (const args of [['frobnicate'], ['status'], ['pause', 'chain-a', '--until', 'later'], ['failover', 'chain-a', '--to', 'a/b'], ['list', '--timeout', 'x']]) {
    const r = await ctl(['--url', url, ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^error: USAGE: /);
  }
  t.equal(seen.length, 0, 'no request was sent');
  const help = await ctl(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /exit status:\n {2}0 {2}success/);

  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const r = await ctl(['list'], { BATON_URL: `http://127.0.0.1:${port}` });
  t.equal(r.code, 3);
  t.match(r.stderr, /^error: UNREACHABLE: cannot reach Baton at http:\/\/127\.0\.0\.1:\d+/);
});

t.test('CLI against a real stack', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: ['a1', 'a2', 'a3'] }] });
  const url = stack.replicas[1]!.url;
  const run = (...args: string[]) => ctl(['--url', url, ...args]);
  const first = await stack.waitForProducingLeader('chain-a', 30_000);

  t.test('list: table and --json', async (t) => {
    const r = await run('list');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^CHAIN\s+LEADER\s+TERM\s+HEAD\s+AGE\s+STATE\n/);
    t.match(r.stdout, new RegExp(`\\nchain-a\\s+${first.nodeId}\\s+${first.term}\\s+\\d+\\s+\\d+s\\s+\\S+`));
    const j = await run('list', '--json');
    t.equal(j.code, 0, j.stderr);
    const body = JSON.parse(j.stdout) as { chains: { id: string; leader: string; term: string; ageS: number | null }[]; count: number };
    t.equal(body.count, 1);
    t.match(body.chains[0], { id: 'chain-a', leader: first.nodeId, term: first.term.toString() });
    t.type(body.chains[0]!.ageS, 'number');
  });

  t.test('status, history, unknown chain', async (t) => {
    const s = await run('status', 'chain-a');
    t.equal(s.code, 0, s.stderr);
    t.match(s.stdout, new RegExp(`leader\\s+${first.nodeId}\\s+term ${first.term}`));
    t.match(s.stdout, /\nfencing\s+lease\n/, 'the fencing mode of the real chain');
    for (const n of ['a1', 'a2', 'a3']) t.match(s.stdout, new RegExp(`\\n${n}\\s+(active|standby)\\s+yes`), `${n} listed`);
    const sj = JSON.parse((await run('status', 'chain-a', '--json')).stdout) as { leader: { nodeId: string } };
    t.equal(sj.leader.nodeId, first.nodeId);
    const h = await run('history', 'chain-a');
    t.equal(h.code, 0, h.stderr);
    t.match(h.stdout, new RegExp(`^TERM\\s+NODE.*\\n${first.term}\\s+${first.nodeId}\\s`));
    const hj = JSON.parse((await run('history', 'chain-a', '--json')).stdout) as { terms: unknown[] };
    t.ok(hj.terms.length >= 1);
    const u = await run('status', 'no-such-chain');
    t.equal(u.code, 1);
    t.match(u.stderr, /^error: NOT_FOUND: /);
  });

  t.test('settings roundtrip', async (t) => {
    const before = JSON.parse((await run('settings', '--json')).stdout) as { autoFailover: boolean; maxConcurrentFailovers: number };
    const set = await run('settings', '--max-concurrent', '7', '--auto-failover', 'off', '--json');
    t.equal(set.code, 0, set.stderr);
    t.same(JSON.parse(set.stdout), { autoFailover: false, maxConcurrentFailovers: 7 });
    const shown = await run('settings');
    t.match(shown.stdout, /auto-failover\s+off\nmax-concurrent\s+7/);
    const back = await run('settings', '--max-concurrent', String(before.maxConcurrentFailovers), '--auto-failover', before.autoFailover ? 'on' : 'off', '--json');
    t.same(JSON.parse(back.stdout), before);
  });

  t.test('pause and resume wait for success; a replayed key does not act twice', async (t) => {
    // The stream is read afterwards, from an event id taken before the changes (the chain's term
    // is an etcd revision): no race with the changes, however slow the machine.
    const status = await run('status', 'chain-a', '--json');
    const term = (JSON.parse(status.stdout) as { leader?: { term: string } }).leader?.term;
    t.ok(term, 'the chain has a term');
    const p = await run('pause', 'chain-a', '--reason', 'ctl test', '--idempotency-key', `pause-${process.pid}`, '--json');
    t.equal(p.code, 0, p.stderr);
    const paused = JSON.parse(p.stdout) as { id: string; state: string };
    t.equal(paused.state, 'succeeded');
    const list = JSON.parse((await run('list', '--json')).stdout) as { chains: { paused?: boolean; states?: string[] }[] };
    t.ok(list.chains[0]!.paused ?? list.chains[0]!.states?.includes('paused'), 'list shows the chain paused');
    const again = await run('pause', 'chain-a', '--reason', 'ctl test', '--idempotency-key', `pause-${process.pid}`, '--json');
    t.equal(again.code, 0, again.stderr);
    t.equal((JSON.parse(again.stdout) as { id: string }).id, paused.id, 'same key: same operation');
    const r = await run('resume', 'chain-a', '--reason', 'ctl test', '--no-wait', '--json');
    t.equal(r.code, 0, r.stderr);
    const resumeId = (JSON.parse(r.stdout) as { id: string }).id;
    const shown = await run('operation', resumeId);
    t.equal(shown.code, 0, shown.stderr);
    t.match(shown.stdout, /^resume chain-a: succeeded/, '`operation ID` waits for it');
    const after = JSON.parse((await run('list', '--json')).stdout) as { chains: { paused?: boolean; states?: string[] }[] };
    t.notOk(after.chains[0]!.paused ?? after.chains[0]!.states?.includes('paused'), 'no longer paused');
    const ev = await run('events', '--json', '--timeout', '3000', '--after', `${term}-0`);
    t.equal(ev.code, 0, ev.stderr);
    const types = ev.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { type: string }).type);
    t.ok(types.includes('paused') && types.includes('resumed'), `events saw the pause and the resume (${[...new Set(types)].join(',')})`);
  });

  t.test('a scheduled switchover, then cancelled', async (t) => {
    const s = await run('switchover', 'chain-a', '--at', '1h', '--json');
    t.equal(s.code, 0, s.stderr);
    const sw = JSON.parse(s.stdout) as { id: string; state: string };
    t.equal(sw.state, 'scheduled');
    const c = await run('cancel-switchover', 'chain-a');
    t.equal(c.code, 0, c.stderr);
    t.match(c.stdout, /^cancel-switchover chain-a: succeeded/);
    const after = await run('operation', sw.id);
    t.equal(after.code, 1, 'the switchover was cancelled');
    t.match(after.stdout, /^switchover chain-a: cancelled/);
  });

  t.test('failover --dry-run changes nothing; failover --to moves the leader', async (t) => {
    const leader = await stack.waitForProducingLeader('chain-a', 30_000);
    const standby = ['a1', 'a2', 'a3'].find((n) => n !== leader.nodeId)!;
    // A standby is eligible once caught up with the recorded head.
    await waitFor(`${standby} eligible`, async () => (await stack.api().getChain('chain-a')).body.nodes.find((n) => n.id === standby)?.eligible || undefined, 10_000, 100);
    const dry = await run('failover', 'chain-a', '--to', standby, '--dry-run');
    t.equal(dry.code, 0, dry.stderr + dry.stdout);
    t.match(dry.stdout, new RegExp(`^plan: fail over from ${leader.nodeId} to ${standby}`));
    const still = await stack.api().getChain('chain-a');
    t.equal(still.body.leader?.term, leader.term.toString(), 'dry run: same term');

    const f = await run('failover', 'chain-a', '--to', standby, '--reason', 'ctl test failover');
    t.equal(f.code, 0, f.stderr + f.stdout);
    t.match(f.stdout, /^failover chain-a: succeeded/);
    const now = await stack.api().getChain('chain-a');
    t.equal(now.body.leader?.nodeId, standby, `the leader is now ${standby}`);
    t.not(now.body.leader?.term, leader.term.toString(), 'a new term');
    const bad = await run('failover', 'chain-a', '--to', 'zz9');
    t.equal(bad.code, 1, 'an unknown node is refused');
    t.match(bad.stderr, /^error: [A-Z_]+: /);
  });
});
