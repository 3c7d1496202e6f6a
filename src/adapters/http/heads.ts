// Commit mode over REST: the active node commits its next block (POST /v1/chains/{id}/head)
// before it gossips it. The same ControlPlane call as gRPC CommitUnsafeHead; a refusal is 409 with
// code STALE_TERM (stop producing), NOT_LEADER or HEAD_MISMATCH.
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../api/control-plane.js';
import type { UnsafeHead } from '../../core/chain.js';
import { chainIdParams } from './schemas.js';

const hex = { type: 'string', pattern: '^([0-9a-f]{2}){1,64}$' } as const;

export const headCommitBody = {
  type: 'object',
  additionalProperties: false,
  required: ['nodeId', 'term', 'head'],
  properties: {
    nodeId: { type: 'string', minLength: 1, maxLength: 128 },
    term: { type: 'string', pattern: '^[1-9][0-9]{0,19}$', description: 'the term the node holds (uint64, decimal)' },
    head: {
      type: 'object',
      additionalProperties: false,
      required: ['number', 'hash', 'parentHash', 'l1Origin', 'timestamp'],
      properties: {
        number: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
        hash: hex,
        parentHash: hex,
        l1Origin: { type: 'string', maxLength: 256 },
        timestamp: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      },
    },
  },
} as const;

interface HeadCommitBody {
  nodeId: string;
  term: string;
  head: { number: number; hash: string; parentHash: string; l1Origin: string; timestamp: number };
}

export function viewHead(head: UnsafeHead) {
  return { ...head, term: head.term.toString() };
}

export function registerHeadRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.post<{ Params: { id: string }; Body: HeadCommitBody }>(
    '/v1/chains/:id/head',
    { schema: { params: chainIdParams, body: headCommitBody } },
    async (req) => {
      const { nodeId, term, head } = req.body;
      const r = await control.commitHead({ chainId: req.params.id, nodeId, term: BigInt(term), ...head });
      return { head: viewHead(r.head), revision: r.revision.toString(), duplicate: r.duplicate };
    },
  );
}
