// The block chain a simulated node holds: height 0 is genesis, every block links to its parent by
// hash. Heights are JS numbers (a simulation never nears 2^53); terms are bigint.
import { createHash } from 'node:crypto';
import type { Block as WireBlock } from '../gen/baton/sim/v1/sim.js';
import type { UnsafeHead } from '../gen/evnode/admin/v1/control.js';

export interface SimBlock {
  number: number;
  hash: Buffer;
  parent: Buffer;
  term: bigint;
  nodeId: string;
  /** Wall-clock ms at which the block was made. */
  timeMs: number;
  l1Origin: string;
}

const ZERO_HASH = Buffer.alloc(32);

export function genesisHashOf(chainId: string): Buffer {
  return createHash('sha256').update(`genesis:${chainId}`).digest();
}

/**
 * sha256(parent ‖ number u64be ‖ term u64be ‖ node id ‖ time s u64be). Whole seconds, as in the
 * unsafe head Baton records, so a node can rebuild a committed block from that head alone.
 */
export function blockHash(parent: Buffer, number: number, term: bigint, nodeId: string, timeMs: number): Buffer {
  const nums = Buffer.alloc(16);
  nums.writeBigUInt64BE(BigInt(number), 0);
  nums.writeBigUInt64BE(term, 8);
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(Math.floor(timeMs / 1000)));
  return createHash('sha256').update(parent).update(nums).update(nodeId, 'utf8').update(time).digest();
}

/** A fake L1 origin: one L1 block per 12 L2 blocks. */
export function l1OriginOf(number: number): string {
  return `l1:${Math.floor(number / 12)}`;
}

export function isWellFormed(b: SimBlock): boolean {
  return (
    Number.isSafeInteger(b.number) &&
    b.number > 0 &&
    b.parent.length === 32 &&
    b.hash.equals(blockHash(b.parent, b.number, b.term, b.nodeId, b.timeMs))
  );
}

export class BlockChain {
  private readonly blocks: SimBlock[];

  constructor(readonly genesisHash: Buffer) {
    this.blocks = [
      { number: 0, hash: genesisHash, parent: ZERO_HASH, term: 0n, nodeId: '', timeMs: 0, l1Origin: l1OriginOf(0) },
    ];
  }

  get head(): SimBlock {
    return this.blocks[this.blocks.length - 1]!;
  }

  get height(): number {
    return this.blocks.length - 1;
  }

  at(number: number): SimBlock | undefined {
    return this.blocks[number];
  }

  /** The block that would extend the head, made now by `nodeId` under `term`. */
  next(term: bigint, nodeId: string, timeMs: number): SimBlock {
    const parent = this.head;
    const number = parent.number + 1;
    return {
      number,
      hash: blockHash(parent.hash, number, term, nodeId, timeMs),
      parent: parent.hash,
      term,
      nodeId,
      timeMs,
      l1Origin: l1OriginOf(number),
    };
  }

  /** True when `b` is well formed and sits exactly on the head. */
  extendsHead(b: SimBlock): boolean {
    return b.number === this.height + 1 && b.parent.equals(this.head.hash) && isWellFormed(b);
  }

  append(b: SimBlock): void {
    if (!this.extendsHead(b)) throw new Error(`block ${b.number} does not extend head ${this.height}`);
    this.blocks.push(b);
  }

  /** Drops every block above `number` (never genesis). */
  truncate(number: number): void {
    this.blocks.length = Math.max(1, Math.min(this.blocks.length, number + 1));
  }

  range(from: number, max: number): SimBlock[] {
    return this.blocks.slice(Math.max(0, from), Math.max(0, from) + max);
  }
}

export function toWire(b: SimBlock): WireBlock {
  return {
    number: BigInt(b.number),
    hash: b.hash,
    parentHash: b.parent,
    term: b.term,
    nodeId: b.nodeId,
    timeMs: BigInt(b.timeMs),
    l1Origin: b.l1Origin,
  };
}

export function fromWire(w: WireBlock): SimBlock {
  return {
    number: Number(w.number),
    hash: Buffer.from(w.hash),
    parent: Buffer.from(w.parentHash),
    term: w.term,
    nodeId: w.nodeId,
    timeMs: Number(w.timeMs),
    l1Origin: w.l1Origin,
  };
}

export function unsafeHeadOf(b: SimBlock): UnsafeHead {
  return {
    l2Number: BigInt(b.number),
    l2Hash: b.hash,
    l1Origin: b.l1Origin,
    timestamp: BigInt(Math.floor(b.timeMs / 1000)),
    l2ParentHash: b.parent,
    term: b.term,
    nodeId: b.nodeId,
  };
}
