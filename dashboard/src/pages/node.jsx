// The selected node of a job: its counts and why it waits, the batch items
// that failed, its tasks (attempts, errors, logs; a page at a time), its
// output once the job ended, and "rerun from here" (optionally with the
// node on a developer's debugger).

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Badge, duration, ErrorBox, Head, Json, useLoad } from '../ui.jsx';

const PAGE = 100;

export function NodePanel({ jobId, node, version, final, spec, flowInput, onSelect, onRerunFrom }) {
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState(null);
  const tasks = useThrottledTasks(jobId, node.nodeName, offset, version);
  const [output, outputError] = useLoad(
    () => (final ? api(`/exec/output/${seg(jobId)}/${seg(node.nodeName)}`) : Promise.resolve(null)),
    [jobId, node.nodeName, final],
  );
  return (
    <aside class="node-panel" data-node-panel={node.nodeName}>
      <div class="toolbar">
        <h2>{node.nodeName}</h2>
        <Badge status={node.status} />
        <span class="spacer" />
        {final && (
          <>
            <button onClick={() => onRerunFrom(false)} title="Run this node and what follows it again, on the stored outputs of its parents">
              Rerun from this node
            </button>
            <button onClick={() => onRerunFrom(true)} title="The same, with this node's tasks sent to your debugger">
              …with debug
            </button>
          </>
        )}
      </div>
      <p class="meta">
        algorithm <a href={`#/algorithms/${encodeURIComponent(node.algorithmName)}`}>{node.algorithmName}</a>
        {node.algorithmVersion && ` ${node.algorithmVersion}`} · {node.done}/{node.total} done
        {node.running ? ` · ${node.running} running` : ''}
        {node.queued ? ` · ${node.queued} queued` : ''}
        {node.failed ? ` · ${node.failed} failed` : ''}
        {node.retries ? ` · ${node.retries} retries` : ''}
        {node.cached ? ` · ${node.cached} cached` : ''}
        {node.debug ? ' · on a debugger' : ''}
      </p>
      {node.cachedFrom && (
        <p class="meta">
          cached from job <a href={`#/jobs/${encodeURIComponent(node.cachedFrom)}`}>{node.cachedFrom}</a>
        </p>
      )}
      {node.waiting && <p class="reason">waiting: {node.waiting}</p>}
      {node.errors?.length > 0 && (
        <div class="error">
          {node.errors.length} item(s) failed within the batch tolerance:
          <ul>
            {node.errors.slice(0, 20).map((e) => (
              <li>
                item {e.batchIndex}: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {!final && <RunningTasks jobId={jobId} node={node} />}
      <h3>Tasks</h3>
      <ErrorBox error={tasks.error} />
      {tasks.list && tasks.list.length === 0 && <p class="empty">No finished task yet.</p>}
      {tasks.list && tasks.list.length > 0 && (
        <table class="list tasks">
          <Head columns={['Item', 'Status', 'Attempts', 'Took', 'Error']} />
          <tbody>
            {tasks.list.map((t) => (
              <>
                <tr class={`task s-${t.status}`} data-task={t.taskId} onClick={() => setOpen(open === t.taskId ? null : t.taskId)}>
                  <td>{t.batchIndex ?? '—'}</td>
                  <td>
                    <Badge status={t.status} />
                  </td>
                  <td>{t.attempts}</td>
                  <td>{t.started && t.ended ? duration(Date.parse(t.ended) - Date.parse(t.started)) : ''}</td>
                  <td class="clip">{t.error}</td>
                </tr>
                {open === t.taskId && (
                  <tr class="task-detail">
                    <td colSpan={5}>
                      <p class="muted">task {t.taskId}</p>
                      {t.error && <pre class="task-error">{t.error}</pre>}
                      <pre class="log">{t.log.length ? t.log.join('\n') : '(no log lines)'}</pre>
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
      {tasks.total > PAGE && (
        <div class="pager">
          <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            ‹ previous
          </button>
          <span class="muted">
            {offset + 1}–{Math.min(offset + PAGE, tasks.total)} of {tasks.total}
          </span>
          <button disabled={offset + PAGE >= tasks.total} onClick={() => setOffset(offset + PAGE)}>
            next ›
          </button>
        </div>
      )}
      {spec && <Inputs spec={spec} flowInput={flowInput} onSelect={onSelect} />}
      <h3>Output</h3>
      <ErrorBox error={outputError} />
      {!final && <p class="empty">Shown once the job ended.</p>}
      {final && output && (output.output == null ? <p class="empty">None: the node did not complete.</p> : <Json value={output.output} open={1} />)}
    </aside>
  );
}

/** Where the node's input comes from: its descriptor's `input` (with the
 * nodes it reads as links to them) and the flowInput values it reads. */
function Inputs({ spec, flowInput, onSelect }) {
  const refs = [];
  const visit = (v) => {
    if (typeof v === 'string') {
      const m = /^([*#]*)@([^.[\]]+)(.*)$/.exec(v);
      if (m) refs.push({ batch: m[1].includes('#'), from: m[2], path: m[3].replace(/^\./, '') });
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(spec.input || []);
  const at = (value, path) => path.split('.').filter(Boolean).reduce((o, k) => (o == null ? undefined : o[k]), value);
  return (
    <div class="inputs">
      <h3>Input</h3>
      <Json value={spec.input || []} open={2} />
      {refs.length > 0 && (
        <ul class="refs">
          {refs.map((r) =>
            r.from === 'flowInput' ? (
              <li>
                flowInput{r.path ? `.${r.path}` : ''} = <code>{JSON.stringify(at(flowInput, r.path))}</code>
              </li>
            ) : (
              <li>
                {r.batch ? 'one task per item of the output of' : 'the output of'}{' '}
                <button class="link" onClick={() => onSelect(r.from)}>
                  {r.from}
                </button>
                {r.path && ` at ${r.path}`}
              </li>
            ),
          )}
        </ul>
      )}
    </div>
  );
}

/** The node's tasks that workers run now, with their logs as they grow (read every second). */
function RunningTasks({ jobId, node }) {
  const [tasks, setTasks] = useState([]);
  const [open, setOpen] = useState(null);
  const active = node.running > 0;
  useEffect(() => {
    if (!active) return setTasks([]);
    let live = true;
    const read = () =>
      api(`/exec/running/${seg(jobId)}?nodeName=${seg(node.nodeName)}&limit=20`).then(
        (list) => live && setTasks(list),
        () => {},
      );
    read();
    const timer = setInterval(read, 1000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [jobId, node.nodeName, active]);
  if (!tasks.length) return null;
  const shown = open && tasks.find((t) => t.taskId === open) ? open : tasks[0].taskId;
  const task = tasks.find((t) => t.taskId === shown);
  return (
    <div class="running" data-running={node.nodeName}>
      <h3>Running now</h3>
      <div class="chips">
        {tasks.map((t) => (
          <button class={t.taskId === shown ? 'active' : ''} onClick={() => setOpen(t.taskId)} data-task={t.taskId}>
            {t.batchIndex ?? t.taskId} · {duration(Date.now() - Date.parse(t.started))}
          </button>
        ))}
      </div>
      <pre class="log live">{task.log.length ? task.log.join('\n') : '(nothing printed yet)'}</pre>
    </div>
  );
}

/** A page of the node's task records, reloaded at most once a second while `version` changes. */
function useThrottledTasks(jobId, nodeName, offset, version) {
  const [state, setState] = useState({ list: null, total: 0, error: null });
  const last = useRef(0);
  useEffect(() => {
    let live = true;
    const wait = Math.max(0, 1000 - (Date.now() - last.current));
    const timer = setTimeout(() => {
      last.current = Date.now();
      api(`/exec/tasks/${seg(jobId)}?nodeName=${seg(nodeName)}&limit=${PAGE}&offset=${offset}`, { withHeaders: true }).then(
        ({ data, headers }) => live && setState({ list: data, total: Number(headers.get('x-total-count')) || data.length, error: null }),
        (error) => live && setState((s) => ({ ...s, error })),
      );
    }, wait);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [jobId, nodeName, offset, version]);
  return state;
}
