// Part 11 of 24 of the CI failover-volume run (>= 100,000 simulated failovers in all, split so that
// each file stays far below tap's per-file timeout on a loaded machine): see failover-volume.ts.
import t from 'tap';
import { failoverVolume } from './failover-volume.js';

await failoverVolume(t, 11_000_001, 4_200);
