// How simulated nodes reach each other's SimService. Peers in other processes over gRPC, one
// channel per address shared by every node of this process; peers hosted by this same process
// directly (a later event-loop turn; a crashed one throws UNAVAILABLE like a closed port), so a process hosting thousands of nodes does
// not open thousands of loopback connections to itself.
import type { ChannelCredentials } from '@grpc/grpc-js';
import { createSimClient, type SimClient } from '../adapters/node/grpc.js';
import { fromWire, type SimBlock, toWire } from './chain.js';
import type { PeerTransport, SimNode } from './node.js';

export class PeerNetwork implements PeerTransport {
  private readonly local = new Map<string, SimNode>();
  private readonly remote = new Map<string, SimClient>();

  /** `credentials`: this process's mTLS identity towards peers that serve TLS (plaintext when absent). */
  constructor(private readonly credentials?: ChannelCredentials) {}

  /** Routes `address` to a node of this process. */
  addLocal(address: string, node: SimNode): void {
    this.local.set(address, node);
  }

  async getBlocks(peer: string, from: number, max: number, deadlineMs: number): Promise<{ blocks: SimBlock[]; headNumber: number }> {
    const node = this.local.get(peer);
    if (node) {
      await nextTurn();
      return node.blocksFrom(from, max);
    }
    const res = await this.client(peer).getBlocks({ fromNumber: from, max }, { deadlineMs });
    return { blocks: res.blocks.map(fromWire), headNumber: Number(res.headNumber) };
  }

  async gossip(peer: string, blocks: SimBlock[], deadlineMs: number): Promise<void> {
    const node = this.local.get(peer);
    if (node) {
      await nextTurn();
      node.acceptGossip(blocks);
      return;
    }
    await this.client(peer).gossip({ blocks: blocks.map(toWire) }, { deadlineMs });
  }

  close(): void {
    for (const c of this.remote.values()) c.close();
    this.remote.clear();
    this.local.clear();
  }

  private client(address: string): SimClient {
    let c = this.remote.get(address);
    if (!c) {
      // deadlineMs here is only the default; every call above passes its own.
      c = createSimClient(address, { deadlineMs: 1000, ...(this.credentials ? { credentials: this.credentials } : {}) });
      this.remote.set(address, c);
    }
    return c;
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
