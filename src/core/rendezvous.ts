// Rendezvous (highest-random-weight) hashing: which live replica should supervise a chain.
// Every replica computes the same owner from the same replica list, and removing a replica moves
// only the chains it owned. This only spreads load; the etcd election is what makes it safe.

const MASK64 = (1n << 64n) - 1n;
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const utf8 = new TextEncoder();

/** FNV-1a 64 over UTF-8 bytes, then murmur3's fmix64 so near-identical ids spread evenly. */
export function hash64(text: string): bigint {
  let h = FNV_OFFSET;
  for (const byte of utf8.encode(text)) {
    h ^= BigInt(byte);
    h = (h * FNV_PRIME) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

export function rendezvousWeight(chainId: string, replicaId: string): bigint {
  return hash64(`${replicaId}\0${chainId}`);
}

/** The replica with the highest weight for the chain (ties: smaller id); undefined when none. */
export function rendezvousOwner(chainId: string, replicaIds: readonly string[]): string | undefined {
  let owner: string | undefined;
  let top = -1n;
  for (const id of replicaIds) {
    const w = rendezvousWeight(chainId, id);
    if (w > top || (w === top && owner !== undefined && id < owner)) {
      owner = id;
      top = w;
    }
  }
  return owner;
}
