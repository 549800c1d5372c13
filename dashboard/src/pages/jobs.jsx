// The jobs list: the newest jobs from the store, kept live by the server's
// event stream (a `job` event whenever one starts, moves or ends).

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, follow } from '../api.js';
import { Badge, ErrorBox, Head, jobDuration, ProgressBar, STATES, when } from '../ui.jsx';

const SHOWN = 200;

/** A summary from `exec/jobs` or a `job` event, in one shape. */
function row(j) {
  return {
    jobId: j.jobId,
    pipeline: j.pipeline,
    status: j.status,
    priority: j.priority,
    progress: j.progress || (j.status === 'completed' ? { percent: 100 } : null),
    timings: j.timings || { created: j.created, ended: j.ended },
    reason: j.reason,
  };
}

export function JobsPage() {
  const [jobs, setJobs] = useState(null);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState('');
  const [pipeline, setPipeline] = useState('');
  const [search, setSearch] = useState('');
  const [shown, setShown] = useState(SHOWN);
  const [, tick] = useState(0);

  useEffect(() => {
    let live = true;
    const latest = new Map();
    const stop = follow('/events', (name, event) => {
      if (name !== 'job') return;
      latest.set(event.jobId, row(event));
      setJobs((list) => list && merge(list, [row(event)]));
    });
    api('/exec/jobs?limit=1000').then(
      (list) => live && setJobs(merge(list.map(row), [...latest.values()])),
      (e) => live && setError(e),
    );
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      live = false;
      stop();
      clearInterval(timer);
    };
  }, []);

  const pipelines = useMemo(() => [...new Set((jobs || []).map((j) => j.pipeline))].sort(), [jobs]);
  const visible = (jobs || []).filter(
    (j) =>
      (!status || j.status === status) &&
      (!pipeline || j.pipeline === pipeline) &&
      (!search || j.jobId.includes(search) || j.pipeline.includes(search) || (j.reason || '').includes(search)),
  );
  const counts = Object.fromEntries(STATES.map((s) => [s, (jobs || []).filter((j) => j.status === s).length]));

  return (
    <section>
      <div class="toolbar">
        <h1>Jobs</h1>
        <select aria-label="status" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">every status</option>
          {STATES.map((s) => (
            <option value={s}>
              {s} ({counts[s]})
            </option>
          ))}
        </select>
        <select aria-label="pipeline" value={pipeline} onChange={(e) => setPipeline(e.target.value)}>
          <option value="">every pipeline</option>
          {pipelines.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
        <input type="search" placeholder="search job, pipeline, reason" value={search} onInput={(e) => setSearch(e.target.value)} />
        <span class="spacer" />
        <a class="button" href="#/pipelines">
          Run a pipeline…
        </a>
      </div>
      <ErrorBox error={error} />
      {jobs === null && !error && <p class="empty">Loading…</p>}
      {jobs && visible.length === 0 && <p class="empty">{jobs.length ? 'No job matches.' : 'No job yet: run a pipeline.'}</p>}
      {visible.length > 0 && (
        <table class="list jobs">
          <Head columns={['Job', 'Pipeline', 'Status', 'Priority', 'Progress', 'Duration', 'Started']} />
          <tbody>
            {visible.slice(0, shown).map((j) => (
              <tr data-job={j.jobId} key={j.jobId}>
                <td>
                  <a href={`#/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobId}</a>
                </td>
                <td>{j.pipeline}</td>
                <td>
                  <Badge status={j.status} />
                </td>
                <td>{j.priority}</td>
                <td>
                  {j.progress ? (
                    <>
                      <ProgressBar percent={j.progress.percent} failed={j.progress.failed > 0} />
                      {j.progress.total != null && (
                        <span class="muted">
                          {' '}
                          {j.progress.done}/{j.progress.total}
                        </span>
                      )}
                    </>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
                <td>{jobDuration(j.timings)}</td>
                <td title={j.timings.created}>{when(j.timings.created)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {visible.length > shown && (
        <button class="link" onClick={() => setShown(shown + SHOWN)}>
          {visible.length - shown} more jobs…
        </button>
      )}
    </section>
  );
}

/** `list` with `updates` merged in by job id, newest first. */
function merge(list, updates) {
  const byId = new Map(list.map((j) => [j.jobId, j]));
  for (const u of updates) byId.set(u.jobId, { ...byId.get(u.jobId), ...u });
  return [...byId.values()].sort((a, b) => (b.timings.created || '').localeCompare(a.timings.created || ''));
}
