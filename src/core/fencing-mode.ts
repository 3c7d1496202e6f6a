// Switching a chain's fencing mode (lease <-> commit) as an operation, executed by the chain's
// supervisor like any other. The operation does not write a term itself: it writes the spec's
// policy.fencingMode (a fenced txn on the supervisor key and the spec revision it read), and the
// loop's decide then sees spec mode != leader mode and emits its `switch-mode` action, which gives
// the same active a new term in the new mode exactly as a PUT of the whole spec does (one path,
// see decide.ts decideActive and ChainSupervisor.switchMode). The operation stays `running` until
// the leader record is in the new mode, and ends with that term.
//
// Rules, in this order:
//   - break-glass override in force: refused (OVERRIDDEN), whatever the mode, like a failover or
//     switchover (the API refuses it at once too): the operator who forced the active keeps
//     leadership as it is until a clear-override;
//   - already in the mode (spec and the current leader term both): succeeded, "already <mode>",
//     no write and no new term (also while paused: nothing changes);
//   - paused: refused (PAUSED). A pause freezes the chain as it is and decide makes no mode switch
//     while it lasts, so the operation could only time out; resume first. A pause that starts
//     after the spec was written fails the operation too, saying that the term follows on resume;
//   - no leader yet: succeeded once the spec is written (the first term is in that mode);
//   - the spec's mode changed back meanwhile (a PUT of the spec): CONFLICT;
//   - the new-mode term not written within the failover timeout (3 leases + 10 s): UNAVAILABLE.
import { isBatonError } from './errors.js';
import { isPaused, type Operation, type SetFencingModeParams } from './operation.js';
import type { OperationBook } from './chain-controls.js';
import type { RunnerHost } from './operations-runner.js';

export class FencingModeSwitch {
  constructor(
    private readonly host: RunnerHost,
    private readonly book: OperationBook,
    private readonly timeoutMs: () => number,
  ) {}

  /** A pending set-fencing-mode: checks, writes the spec, and ends or waits for the new term. */
  async start(op: Operation, params: SetFencingModeParams): Promise<void> {
    const state = this.host.state()!;
    const want = params.mode;
    const leader = state.leader;
    if (state.override) {
      const o = state.override;
      return void (await this.book.fail(op, 'OVERRIDDEN', `break-glass override in force: ${o.nodeId} forced active under term ${o.term} (${o.reason}); clear it first`, 'check'));
    }
    if (this.host.spec().policy.fencingMode === want && (leader === undefined || leader.mode === want)) {
      const detail = `already ${want}`;
      const result = leader ? { term: leader.term.toString(), nodeId: leader.nodeId, detail } : { detail };
      return void (await this.book.save(op, { state: 'succeeded', result }, { name: 'check', state: 'done', detail: `${detail}: nothing to do` }));
    }
    if (isPaused(state.pause, this.host.wallMs())) {
      return void (await this.book.fail(op, 'PAUSED', 'chain is paused: no fencing mode switch while paused; resume it first', 'check'));
    }
    let written: boolean;
    try {
      written = await this.host.setFencingMode(want);
    } catch (err) {
      // FENCED and CONFLICT (a spec PUT in between) end this turn: the loop reads again and retries.
      if (!isBatonError(err, 'NOT_FOUND')) throw err;
      return void (await this.book.fail(op, err.code, err.message, 'spec'));
    }
    const spec = { name: 'spec', state: 'done' as const, detail: written ? `spec policy.fencingMode set to ${want}` : `spec already in ${want} mode` };
    if (!leader) {
      const detail = `fencing mode ${want}; no leader yet: the first term will be in ${want} mode`;
      return void (await this.book.save(op, { state: 'succeeded', result: { detail } }, spec));
    }
    this.book.started(op);
    await this.book.save(op, { state: 'running', result: { nodeId: leader.nodeId, detail: `waiting for a ${want}-mode term for ${leader.nodeId}` } }, spec);
  }

  /** A running set-fencing-mode: done once the leader record is in the mode. True when it ended. */
  async check(op: Operation, params: SetFencingModeParams): Promise<boolean> {
    const state = this.host.state()!;
    const want = params.mode;
    const leader = state.leader;
    const specMode = this.host.spec().policy.fencingMode;
    if (leader?.mode === want || (leader === undefined && specMode === want)) {
      const detail = leader ? `${leader.nodeId} leads under term ${leader.term} in ${want} mode` : `no leader; the first term will be in ${want} mode`;
      const result = leader ? { term: leader.term.toString(), nodeId: leader.nodeId, detail } : { detail };
      await this.book.save(op, { state: 'succeeded', result }, { name: 'term', state: 'done', detail });
      return true;
    }
    if (specMode !== want) {
      await this.book.fail(op, 'CONFLICT', `the chain spec was changed to ${specMode} mode meanwhile`, 'term');
      return true;
    }
    if (isPaused(state.pause, this.host.wallMs())) {
      const detail = `chain was paused before its ${want}-mode term was written: the spec is in ${want} mode and the term follows once it is resumed`;
      await this.book.fail(op, 'PAUSED', detail, 'term');
      return true;
    }
    const waited = this.host.monoMs() - this.book.since(op);
    if (waited > this.timeoutMs()) {
      const at = leader ? `${leader.nodeId} still under ${leader.mode}-mode term ${leader.term}` : 'no leader';
      await this.book.fail(op, 'UNAVAILABLE', `no ${want}-mode term within ${Math.round(waited)} ms: ${at}`, 'term');
      return true;
    }
    return false;
  }
}
