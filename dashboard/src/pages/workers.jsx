// Workers and resources: each algorithm version's warm workers (idle,
// busy), the tasks queued for them and why they wait, the budget they
// hold, and the debug endpoints with tasks waiting for a developer.
// Refreshed every two seconds.

import { useEffect } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBox, Head, ProgressBar, useLoad } from '../ui.jsx';

export function WorkersPage() {
  const [data, error, reload] = useLoad(() => Promise.all([api('/workers'), api('/debug')]), []);
  useEffect(() => {
    const timer = setInterval(reload, 2000);
    return () => clearInterval(timer);
  }, [reload]);
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p class="empty">Loading…</p>;
  const [workers, debug] = data;
  const cpuShare = workers.cpu ? (100 * workers.cpuUsed) / workers.cpu : 0;
  return (
    <section>
      <div class="toolbar">
        <h1>Workers</h1>
        <span class="muted">{workers.launched} started since the server started</span>
      </div>
      <p class="budget">
        cpu <ProgressBar percent={cpuShare} /> {workers.cpuUsed.toFixed(2)} of {workers.cpu} held · mem {workers.memUsed} of {workers.mem}
      </p>
      {workers.pools.length === 0 && <p class="empty">No worker: they start when a task needs one.</p>}
      {workers.pools.length > 0 && (
        <table class="list workers">
          <Head columns={['Algorithm', 'Version', 'Workers', 'Busy', 'Idle', 'Queued', 'Each holds', 'Waiting for']} />
          <tbody>
            {workers.pools.map((p) => (
              <tr data-pool={`${p.algorithm}@${p.version}`} class={p.retired ? 'retired' : ''}>
                <td>
                  <a href={`#/algorithms/${encodeURIComponent(p.algorithm)}`}>{p.algorithm}</a>
                </td>
                <td>
                  {p.version}
                  {p.retired ? ' (replaced)' : ''}
                </td>
                <td>
                  {p.workers} / {p.maxWorkers}
                </td>
                <td>{p.busy}</td>
                <td>{p.idle}</td>
                <td>{p.queued}</td>
                <td>
                  cpu {p.cpu} · {p.mem}
                </td>
                <td class="reason-cell">{p.waiting || ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Debug endpoints</h2>
      {debug.length === 0 && <p class="empty">None in use.</p>}
      {debug.length > 0 && (
        <table class="list">
          <Head columns={['Algorithm', 'URL', 'Debugger', 'Queued tasks']} />
          <tbody>
            {debug.map((d) => (
              <tr>
                <td>{d.algorithm}</td>
                <td>
                  <code>{d.url}</code>
                </td>
                <td>{d.connected ? 'connected' : 'not connected'}</td>
                <td>{d.queued}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
