// One job: its DAG with each node's state and batch counts (live from
// `events?jobId=`), the selected node's tasks, errors and logs, the job's
// results, a timeline of its tasks, its webhook deliveries, and the
// buttons that stop it or run it again (all of it, only what failed, or
// from one node on, optionally under a debugger).

import { useEffect, useState } from 'preact/hooks';
import { api, follow, seg } from '../api.js';
import { DagGraph } from '../graph.jsx';
import { Badge, download, ErrorBox, Head, jobDuration, Json, ProgressBar, Tabs, useLoad, when } from '../ui.jsx';
import { NodePanel } from './node.jsx';
import { Timeline } from './timeline.jsx';

const go = (jobId) => {
  location.hash = `#/jobs/${encodeURIComponent(jobId)}`;
};

export function JobPage({ jobId }) {
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const [graph] = useLoad(() => api(`/graph/parsed/${seg(jobId)}`), [jobId]);
  const [descriptor] = useLoad(() => api(`/exec/pipelines/${seg(jobId)}`), [jobId]);
  const [selected, setSelected] = useState(null);
  const [tab, setTab] = useState('graph');
  const [actionError, setActionError] = useState(null);
  const [debugInfo, setDebugInfo] = useState(null);
  const [, tick] = useState(0);

  useEffect(() => {
    const stop = follow(`/events?jobId=${seg(jobId)}`, (name, s) => name === 'status' && setStatus(s), {
      reconnect: false,
      onError: setError,
    });
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      stop();
      clearInterval(timer);
    };
  }, [jobId]);

  const act = (fn) => async () => {
    setActionError(null);
    try {
      await fn();
    } catch (e) {
      setActionError(e);
    }
  };
  const rerun = (body, path = '/exec/rerun') =>
    act(async () => {
      const started = await api(path, { method: 'POST', body });
      go(started.jobId);
    });
  const rerunFrom = (node, debug) =>
    act(async () => {
      const started = await api('/exec/caching', { method: 'POST', body: { jobId, nodeName: node, debug } });
      if (!debug) return go(started.jobId);
      const algorithm = status.nodes.find((n) => n.nodeName === node)?.algorithmName;
      const endpoint = await api(`/debug/${seg(algorithm)}`);
      setDebugInfo({ jobId: started.jobId, node, algorithm, url: endpoint.url });
    });

  if (error) return <ErrorBox error={error} />;
  if (!status) return <p class="empty">Loading {jobId}…</p>;
  const final = !['pending', 'active', 'paused'].includes(status.status);
  const failedSome = status.nodes.some((n) => n.failed > 0 || ['failed', 'stopped', 'waiting'].includes(n.status));
  const nodes = status.nodes;
  const edges = (graph?.edges || []).map((e) => ({ from: e.from, to: e.to, waitAny: e.value?.types?.includes('waitAny') }));
  const node = nodes.find((n) => n.nodeName === selected);

  return (
    <section class="job">
      <div class="toolbar">
        <h1>
          <a href="#/jobs">Jobs</a> / {jobId}
        </h1>
        <Badge status={status.status} />
        <ProgressBar percent={status.progress.percent} failed={status.progress.failed > 0} />
        <span class="muted">
          {status.progress.done}/{status.progress.total} tasks
          {status.progress.failed ? `, ${status.progress.failed} failed` : ''} · {jobDuration(status.timings)}
        </span>
        <span class="spacer" />
        {!final && (
          <button class="danger" onClick={act(() => api('/exec/stop', { method: 'POST', body: { jobId } }))}>
            Stop
          </button>
        )}
        {final && <button onClick={rerun({ jobId })}>Rerun</button>}
        {final && failedSome && status.status !== 'completed' && <button onClick={rerun({ jobId, failed: true })}>Rerun failed</button>}
      </div>
      <p class="meta">
        pipeline <a href={`#/pipelines/${encodeURIComponent(status.pipeline)}`}>{status.pipeline}</a> · priority {status.priority} · created{' '}
        {when(status.timings.created)}
        {status.trigger && <> · started by {status.trigger.type}{status.trigger.jobId ? ` (${status.trigger.jobId})` : ''}</>}
      </p>
      {status.reason && !status.error && <p class="reason">{status.reason}</p>}
      {status.error && (
        <div class="error" role="alert">
          node {status.error.nodeName}
          {status.error.batchIndex != null && `, item ${status.error.batchIndex}`}: {status.error.message}
        </div>
      )}
      <ErrorBox error={actionError} />
      {debugInfo && <DebugHint info={debugInfo} onClose={() => setDebugInfo(null)} />}
      <Tabs
        tabs={[
          ['graph', 'Graph'],
          ['results', 'Results'],
          ['timeline', 'Timeline'],
          ['webhooks', 'Webhooks'],
          ['descriptor', 'Descriptor'],
        ]}
        active={tab}
        onSelect={setTab}
      />
      {tab === 'graph' && (
        <div class="graph-and-node">
          <DagGraph nodes={nodes} edges={edges} selected={selected} onSelect={setSelected} />
          {node ? (
            <NodePanel
              jobId={jobId}
              node={node}
              version={status.progress.done + status.progress.failed}
              final={final}
              spec={descriptor?.nodes?.find((n) => n.nodeName === node.nodeName)}
              flowInput={descriptor?.flowInput}
              onSelect={setSelected}
              onRerunFrom={(debug) => rerunFrom(node.nodeName, debug)()}
            />
          ) : (
            <p class="hint">Click a node for its tasks, errors and logs.</p>
          )}
        </div>
      )}
      {tab === 'results' && <Results jobId={jobId} final={final} />}
      {tab === 'timeline' && <Timeline jobId={jobId} status={status} />}
      {tab === 'webhooks' && <Webhooks jobId={jobId} />}
      {tab === 'descriptor' && <Descriptor jobId={jobId} />}
    </section>
  );
}

function DebugHint({ info, onClose }) {
  const command = `distributedkubectl debug ${info.algorithm} --code ./${info.algorithm}`;
  return (
    <div class="notice" data-debug-url={info.url}>
      <p>
        Job <a href={`#/jobs/${encodeURIComponent(info.jobId)}`}>{info.jobId}</a> runs {info.node} on your machine: it waits until a debugger
        connects to <code>{info.url}</code>. Run, where the algorithm's code is:
      </p>
      <pre class="command">{command}</pre>
      <p class="hint">(or point HKube's wrapper at the URL). The rest of the pipeline runs here with the stored inputs.</p>
      <button class="link" onClick={onClose}>
        close
      </button>
    </div>
  );
}

function Results({ jobId, final }) {
  const [results, error] = useLoad(() => api(`/exec/results/${seg(jobId)}`), [jobId, final]);
  if (error) return <ErrorBox error={error} />;
  if (!results) return <p class="empty">Loading…</p>;
  if (results.data == null) return <p class="empty">No results yet: the job is {results.status}.</p>;
  return (
    <div class="results">
      <div class="toolbar">
        <span class="muted">
          {results.status} in {results.timeTook} s · stored in {results.storageModule}
        </span>
        <span class="spacer" />
        <button onClick={() => download(`${jobId}-results.json`, results.data)}>Download JSON</button>
      </div>
      <Json value={results.data} open={3} />
    </div>
  );
}

function Webhooks({ jobId }) {
  const [hooks, error] = useLoad(() => api(`/webhooks/list/${seg(jobId)}`), [jobId]);
  if (error) return <ErrorBox error={error} />;
  if (!hooks) return <p class="empty">Loading…</p>;
  if (!hooks.deliveries.length) return <p class="empty">No webhook: the job's descriptor sets none (webhooks.progress / webhooks.result).</p>;
  return (
    <table class="list">
      <Head columns={['Kind', 'URL', 'Status', 'Attempts', 'When', 'Error']} />
      <tbody>
        {hooks.deliveries.map((d) => (
          <tr>
            <td>
              {d.kind} #{d.seq}
            </td>
            <td>{d.url}</td>
            <td>
              {d.status}
              {d.httpStatus ? ` (HTTP ${d.httpStatus})` : ''}
            </td>
            <td>{d.attempts}</td>
            <td>{when(d.timestamp)}</td>
            <td>{d.error}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Descriptor({ jobId }) {
  const [pipeline, error] = useLoad(() => api(`/exec/pipelines/${seg(jobId)}`), [jobId]);
  if (error) return <ErrorBox error={error} />;
  if (!pipeline) return <p class="empty">Loading…</p>;
  return <pre class="code">{JSON.stringify(pipeline, null, 2)}</pre>;
}
