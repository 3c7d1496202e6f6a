// Runs the built CLI (`npm run build` first; the test script builds before tap).
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));

function check(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'check', ...args], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.status, lines, json, stderr: r.stderr };
}

const C = 'chain-a';
const h = (n: number) => `${n.toString(16).padStart(4, '0')}aa`;
const line = (o: object) => JSON.stringify(o) + '\n';

// One node's tenure: lease + active-from at t0, blocks lo..hi every 100 ms, stop at the end.
function tenure(node: string, term: string, t0: number, lo: number, hi: number): string {
  const base = (t: number) => ({ t, chain: C, node });
  let out = line({ ...base(0), ev: 'start', version: 'sim', genesis: h(0) });
  out += line({ ...base(t0), ev: 'lease-granted', term, ttlMs: 5000, expiresAt: t0 + 5000 });
  out += line({ ...base(t0), ev: 'active-from', term, head: lo - 1 });
  for (let n = lo; n <= hi; n++) {
    out += line({ ...base(t0 + 100 * (n - lo + 1)), ev: 'block', term, number: n, hash: h(n), parent: h(n - 1) });
  }
  const end = t0 + 100 * (hi - lo + 2);
  return out + line({ ...base(end), ev: 'active-until', term, head: hi, reason: 'handoff' });
}

t.test('a clean directory: exit 0, counts in the final JSON line', async (t) => {
  const dir = t.testdir({ run: { 'a.jsonl': tenure('a', '5', 1000, 1, 10), nested: {} }, 'notes.txt': 'not a log' });
  writeFileSync(join(dir, 'run', 'nested', 'b.jsonl'), tenure('b', '9', 2200, 11, 15));
  const r = check(dir);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.lines.length, 1, 'no violation lines');
  t.same(r.json, {
    logs: 2,
    chains: 1,
    nodes: 2,
    blocks: 15,
    violations: 0,
    by_kind: { OVERLAP: 0, FORK: 0, BAD_PARENT: 0, TERM_DECREASE: 0, AFTER_LEASE: 0, STALE_PUBLISH: 0 },
    gaps: 0,
    max_height: 15,
    truncated_lines: 0,
  });
});

t.test('violations: exit 1, one human line each with evidence, then JSON', async (t) => {
  // b starts at 2000 while a produces until 2200: overlap (its block 11 equals a's: one block).
  const dir = t.testdir({ 'a.jsonl': tenure('a', '5', 1000, 1, 11), 'b.jsonl': tenure('b', '9', 2000, 11, 12) });
  const r = check(join(dir, 'a.jsonl'), join(dir, 'b.jsonl'));
  t.equal(r.code, 1);
  t.match(r.json, { violations: 1, by_kind: { OVERLAP: 1, FORK: 0 }, blocks: 12, max_height: 12 });
  t.equal(r.lines.length, 2);
  t.match(r.lines[0], /^OVERLAP chain-a: a term 5 producing \[1000, 2200\) \(from .*a\.jsonl:3, until .*a\.jsonl:15\) and b term 9/);

  const forked = tenure('b', '9', 2300, 11, 12).replace(`"hash":"${h(11)}"`, '"hash":"ffff"');
  writeFileSync(join(dir, 'b.jsonl'), forked);
  const f = check('--json-only', dir);
  t.equal(f.code, 1);
  t.equal(f.lines.length, 1, '--json-only prints only the JSON line');
  t.match(f.json, { violations: 1, by_kind: { FORK: 1, BAD_PARENT: 0 } }); // 12 extends a's 11
  t.match(check(dir).lines[0], /^FORK chain-a: height 11 has 2 hashes: block 11 000baa by a term 5 \(.*a\.jsonl:14\); block 11 ffff by b term 9 \(.*b\.jsonl:4\)$/);
});

t.test('a truncated last line is tolerated and counted', async (t) => {
  const dir = t.testdir({ 'a.jsonl': tenure('a', '5', 1000, 1, 3) });
  appendFileSync(join(dir, 'a.jsonl'), '{"t":1600,"chain":"chain-a","node":"a","ev":"blo');
  const r = check(dir);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json, { logs: 1, blocks: 3, truncated_lines: 1 });
});

t.test('bad input: exit 2 with file:line', async (t) => {
  const dir = t.testdir({});
  const good = tenure('a', '5', 1000, 1, 3).split('\n');
  const cases: [string, string, RegExp][] = [
    ['malformed middle line', [good[0], '{"t":1,', ...good.slice(1)].join('\n'), /bad\.jsonl:2: not a JSON line/],
    ['unknown event', [good[0], line({ t: 1, chain: C, node: 'a', ev: 'nap' }), ...good.slice(1)].join('\n'), /:2: unknown event "nap"/],
    ['term as a number', good.join('\n').replace('"term":"5"', '"term":5'), /:2: lease-granted: bad or missing term 5/],
    ['valid JSON, wrong shape, last line', good.join('\n') + '{"t":1}\n', /bad\.jsonl:8: unknown event/],
  ];
  for (const [name, text, message] of cases) {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, text);
    const r = check(file);
    t.equal(r.code, 2, name);
    t.match(r.stderr, message, name);
  }
  t.equal(check().code, 2, 'no LOG');
  t.equal(check('--frobnicate', dir).code, 2, 'unknown option');
  t.equal(check(join(dir, 'missing.jsonl')).code, 2, 'missing file');
  mkdirSync(join(dir, 'empty'));
  t.match(check(join(dir, 'empty')), { code: 2, stderr: /no \*\.jsonl file/ }, 'directory without logs');
});
