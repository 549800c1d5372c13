// The code API of start(args, hkubeApi), named as in HKube's Node.js wrapper:
//   startAlgorithm(name, input = [], includeResult = true)
//   startStoredSubpipeline(name, flowInput = {}, includeResult = true)
//   startRawSubpipeline(name, nodes, flowInput, options = {}, webhooks = {}, includeResult = true)
// Each sends HKube's message (startAlgorithmExecution, startStoredSubPipeline,
// startRawSubPipeline) and returns a promise of the child's result: an algorithm's
// output, or a sub-pipeline's result list; null with includeResult = false. A failed
// or stopped child rejects with an Error naming the call.
'use strict';

// Answers the server sends: which id field they carry and whether they end the call.
const ANSWERS = {
  algorithmExecutionDone: ['execId', true],
  algorithmExecutionError: ['execId', true],
  subPipelineStarted: ['subPipelineId', false],
  subPipelineDone: ['subPipelineId', true],
  subPipelineError: ['subPipelineId', true],
  subPipelineStopped: ['subPipelineId', true],
};

class Calls {
  /** send(command, data) sends one envelope. */
  constructor(send) {
    this._send = send;
    this._last = 0;
    this._pending = new Map();
  }

  call(command, idKey, data, includeResult) {
    this._last += 1;
    const id = String(this._last);
    return new Promise((resolve, reject) => {
      this._pending.set(id, { command, includeResult, resolve, reject });
      this._send(command, { ...data, [idKey]: id, includeResult });
    });
  }

  /** An answer arrived; false if it is not one of the code API's. */
  answer(command, data) {
    const known = ANSWERS[command];
    if (!known) return false;
    const [idKey, final] = known;
    const id = String(data && data[idKey]);
    const pending = this._pending.get(id);
    if (!final || !pending) return true;
    this._pending.delete(id);
    const ok = (command === 'algorithmExecutionDone' || command === 'subPipelineDone') && !(data && data.error);
    if (ok) {
      pending.resolve(pending.includeResult ? (data.response ?? null) : null);
    } else {
      const why = (data && (data.error || data.reason)) || command;
      pending.reject(new Error(`${pending.command} ${id}: ${why}`));
    }
    return true;
  }

  /** The connection is over: nothing will answer. */
  abandon(why) {
    for (const [id, pending] of this._pending) pending.reject(new Error(`${pending.command} ${id}: ${why}`));
    this._pending.clear();
  }

  /** The object user code gets, with progress(). */
  api(progress) {
    return {
      progress,
      startAlgorithm: (algorithmName, input = [], includeResult = true) =>
        this.call('startAlgorithmExecution', 'execId', { algorithmName, input }, includeResult),
      startStoredSubpipeline: (name, flowInput = {}, includeResult = true) =>
        this.call('startStoredSubPipeline', 'subPipelineId', { subPipeline: { name, flowInput } }, includeResult),
      startRawSubpipeline: (name, nodes, flowInput, options = {}, webhooks = {}, includeResult = true) =>
        this.call('startRawSubPipeline', 'subPipelineId',
          { subPipeline: { name, nodes, flowInput, options, webhooks } }, includeResult),
    };
  }
}

module.exports = { Calls };
