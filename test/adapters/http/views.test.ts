// RFC 3339 times in request bodies, the canonical form an Idempotency-Key is bound to, and the
// operation view (times both ways, terms as strings, absent fields as null).
import t from 'tap';
import { canonicalJson, canonicalRequest, parseRfc3339, viewOperation } from '../../../src/adapters/http/views.js';
import type { Operation } from '../../../src/core/operation.js';

t.test('parseRfc3339 reads every RFC 3339 date-time and nothing else', async (t) => {
  const good: [string, number][] = [
    ['2030-01-01T00:00:00Z', Date.UTC(2030, 0, 1)],
    ['2030-01-01t00:00:00z', Date.UTC(2030, 0, 1)],
    ['2030-01-01T02:00:00+02:00', Date.UTC(2030, 0, 1)],
    ['2029-12-31T19:30:00-04:30', Date.UTC(2030, 0, 1)],
    ['2030-01-01T00:00:00.5Z', Date.UTC(2030, 0, 1) + 500],
    ['2030-01-01T00:00:00.123456789Z', Date.UTC(2030, 0, 1) + 123],
    ['2028-02-29T12:00:00Z', Date.UTC(2028, 1, 29, 12)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['0001-01-01T00:00:00Z', -62135596800000],
  ];
  for (const [text, ms] of good) t.equal(parseRfc3339(text), ms, text);
  const bad = [
    '', 'tomorrow', '2030-01-01', '2030-01-01T00:00Z', '2030-01-01T00:00:00', '2030-01-01 00:00:00Z', '2030-1-01T00:00:00Z',
    '2030-00-01T00:00:00Z', '2030-13-01T00:00:00Z', '2030-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2030-04-31T00:00:00Z',
    '2030-01-00T00:00:00Z', '2030-01-01T24:00:00Z', '2030-01-01T00:60:00Z', '2030-01-01T00:00:60Z', '2030-01-01T00:00:00+24:00',
    '2030-01-01T00:00:00+02:60', '2030-01-01T00:00:00.Z', '2030-01-01T00:00:00.1234567890Z', '+02030-01-01T00:00:00Z',
    ' 2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z ', '２０３０-01-01T00:00:00Z',
  ];
  for (const text of bad) t.equal(parseRfc3339(text), undefined, JSON.stringify(text));
});

t.test('canonical JSON: key order and whitespace do not matter, everything else does', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
  t.equal(canonicalJson(JSON.parse('{ "reason": "x",\n "until": "u" }')), canonicalJson({ until: 'u', reason: 'x' }));
  t.not(canonicalJson({ a: 1 }), canonicalJson({ a: '1' }));
  t.not(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
  t.equal(canonicalRequest('post', '/v1/chains/c/pause?x=1', { reason: 'r' }), 'POST /v1/chains/c/pause\n{"reason":"r"}');
  t.not(canonicalRequest('POST', '/v1/chains/c/pause', { reason: 'r' }), canonicalRequest('POST', '/v1/chains/c/resume', { reason: 'r' }));
});

t.test('operation view', async (t) => {
  const op: Operation = {
    id: 'op-1',
    chainId: 'c',
    params: { kind: 'switchover', reason: 'r', scheduledAtMs: Date.UTC(2030, 0, 1) },
    state: 'succeeded',
    steps: [{ name: 'fence', state: 'done', atMs: Date.UTC(2030, 0, 1, 0, 0, 1), detail: 'term 9' }],
    createdAtMs: Date.UTC(2029, 11, 31),
    updatedAtMs: Date.UTC(2030, 0, 1, 0, 0, 2),
    result: { term: '9', nodeId: 'n2', detail: 'done' },
    requestId: 'req-1',
  };
  t.same(viewOperation(op), {
    id: 'op-1',
    chainId: 'c',
    params: { kind: 'switchover', reason: 'r', scheduledAt: '2030-01-01T00:00:00.000Z' },
    state: 'succeeded',
    steps: [{ name: 'fence', state: 'done', at: '2030-01-01T00:00:01.000Z', atMs: Date.UTC(2030, 0, 1, 0, 0, 1), detail: 'term 9' }],
    createdAt: '2029-12-31T00:00:00.000Z',
    createdAtMs: Date.UTC(2029, 11, 31),
    updatedAt: '2030-01-01T00:00:02.000Z',
    updatedAtMs: Date.UTC(2030, 0, 1, 0, 0, 2),
    result: { term: '9', nodeId: 'n2', detail: 'done' },
    error: null,
    executor: null,
    traceId: null,
    requestId: 'req-1',
    idempotencyKey: null,
  });
  t.same(viewOperation({ ...op, params: { kind: 'pause', reason: 'r', untilMs: 0 } }).params, { kind: 'pause', reason: 'r', until: '1970-01-01T00:00:00.000Z' });
});
