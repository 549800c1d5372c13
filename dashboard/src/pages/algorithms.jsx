// Algorithms: the list, one algorithm's spec, versions (make one current)
// and builds (status, log, stop, rerun), and applying code by uploading a
// folder or an archive, with the build log streaming as it runs.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, followLines, seg } from '../api.js';
import { tarOf } from '../tar.js';
import { Badge, ErrorBox, Head, Json, useLoad, when } from '../ui.jsx';

export function AlgorithmsPage() {
  const [list, error, reload] = useLoad(() => api('/store/algorithms'), []);
  return (
    <section>
      <div class="toolbar">
        <h1>Algorithms</h1>
      </div>
      <ErrorBox error={error} />
      <Apply onApplied={reload} />
      {list && list.length === 0 && <p class="empty">No algorithm yet: apply one above or with `distributedkubectl algorithm apply`.</p>}
      {list && list.length > 0 && (
        <table class="list">
          <Head columns={['Name', 'Env', 'Version', 'Resources', 'Image', 'Modified']} />
          <tbody>
            {list.map((a) => (
              <tr data-algorithm={a.name}>
                <td>
                  <a href={`#/algorithms/${encodeURIComponent(a.name)}`}>{a.name}</a>
                </td>
                <td>{a.env}</td>
                <td>{a.version}</td>
                <td>{resources(a)}</td>
                <td class="clip">{a.algorithmImage || a.image || ''}</td>
                <td>{when(a.modified)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** "cpu 0.5 · mem 256Mi", or the server's defaults. */
function resources(a) {
  const parts = [];
  const cpu = a.cpu ?? a.resources?.cpu;
  const mem = a.mem ?? a.resources?.mem;
  const gpu = a.gpu ?? a.resources?.gpu;
  if (cpu != null) parts.push(`cpu ${cpu}`);
  if (mem != null) parts.push(`mem ${mem}`);
  if (gpu) parts.push(`gpu ${gpu}`);
  return parts.length ? parts.join(' · ') : 'defaults';
}

const SPEC = { name: 'my-algorithm', env: 'python', code: { entryPoint: 'main.py' }, resources: { cpu: 0.5, mem: '256Mi' } };

/** Upload code (a folder, made into a tar here, or an archive) with a spec; follow the build it starts. */
function Apply({ onApplied, name }) {
  const [open, setOpen] = useState(Boolean(name));
  const [spec, setSpec] = useState(JSON.stringify(name ? { ...SPEC, name } : SPEC, null, 2));
  const [files, setFiles] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const pickFolder = (e) => {
    const picked = [...e.target.files];
    setFiles({ kind: 'folder', label: `${picked.length} file(s)`, picked });
  };
  const pickArchive = (e) => {
    const file = e.target.files[0];
    if (file) setFiles({ kind: 'archive', label: file.name, file });
  };
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setOutcome(null);
    let payload;
    try {
      payload = JSON.parse(spec);
    } catch (err) {
      return setError(new Error(`the spec is not JSON: ${err.message}`));
    }
    if (!files) return setError(new Error('pick a folder or an archive with the code'));
    setBusy(true);
    try {
      const form = new FormData();
      form.append('payload', JSON.stringify(payload));
      if (files.kind === 'folder') {
        // `webkitRelativePath` starts with the picked folder's own name: drop it.
        const entries = files.picked.map((file) => ({ path: file.webkitRelativePath.split('/').slice(1).join('/') || file.name, file }));
        form.append('file', await tarOf(entries), `${payload.name}.tar`);
      } else {
        form.append('file', files.file, files.file.name);
      }
      const applied = await api('/store/algorithms/apply', { method: 'POST', body: form });
      setOutcome(applied);
      onApplied && onApplied();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!open) {
    return (
      <button class="primary" onClick={() => setOpen(true)}>
        Apply an algorithm…
      </button>
    );
  }
  return (
    <form class="apply" onSubmit={submit}>
      <h2>Apply {name || 'an algorithm'}</h2>
      <div class="two">
        <div>
          <p class="hint">The spec (JSON), as `algorithm apply` takes it; `code.path` is not needed: the code is uploaded.</p>
          <textarea class="code" rows={9} spellcheck={false} aria-label="spec" value={spec} onInput={(e) => setSpec(e.target.value)} />
        </div>
        <div>
          <p>
            <label>
              A folder: <input type="file" webkitdirectory multiple name="folder" onChange={pickFolder} />
            </label>
          </p>
          <p>
            <label>
              or an archive (.tar.gz, .tar, .zip): <input type="file" name="archive" accept=".tar,.gz,.tgz,.zip" onChange={pickArchive} />
            </label>
          </p>
          {files && <p class="muted">{files.label}</p>}
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Uploading…' : 'Apply'}
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      {outcome && (
        <div class="notice">
          {outcome.messages.map((m) => (
            <p>{m}</p>
          ))}
          {outcome.buildId && <BuildLog buildId={outcome.buildId} onEnd={onApplied} />}
        </div>
      )}
    </form>
  );
}

/** A build's log, streamed until it ends. */
export function BuildLog({ buildId, onEnd }) {
  const [lines, setLines] = useState([]);
  const [progress, setProgress] = useState(0);
  const [end, setEnd] = useState(null);
  const [error, setError] = useState(null);
  const box = useRef(null);
  useEffect(() => {
    const abort = new AbortController();
    const got = [];
    followLines(
      `/builds/logs/${seg(buildId)}`,
      (event) => {
        if (event.type === 'line') {
          got.push(event.text);
          setLines([...got]);
        } else if (event.type === 'progress') setProgress(event.percent);
        else if (event.type === 'end') setEnd(event);
      },
      abort.signal,
    ).then(
      () => onEnd && onEnd(),
      (e) => abort.signal.aborted || setError(e),
    );
    return () => abort.abort();
  }, [buildId]);
  useEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length]);
  return (
    <div class="build-log" data-build={buildId}>
      <p>
        build {buildId} {end ? <Badge status={end.status} /> : <span class="muted">running, {progress}%</span>}
        {end?.version && ` → version ${end.version}`}
        {end?.error && <span class="error-text"> {end.error}</span>}
      </p>
      <pre class="log" ref={box}>
        {lines.join('\n')}
      </pre>
      <ErrorBox error={error} />
    </div>
  );
}

export function AlgorithmPage({ name }) {
  const [data, error, reload] = useLoad(
    () => Promise.all([api(`/store/algorithms/${seg(name)}`), api(`/versions/algorithms/${seg(name)}`), api(`/builds/list/${seg(name)}`)]),
    [name],
  );
  const [shownLog, setShownLog] = useState(null);
  const [actionError, setActionError] = useState(null);
  const act = (fn) => async () => {
    setActionError(null);
    try {
      await fn();
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p class="empty">Loading…</p>;
  const [algorithm, versions, builds] = data;
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/algorithms">Algorithms</a> / {name}
        </h1>
        <span class="muted">version {algorithm.version}</span>
      </div>
      <ErrorBox error={actionError} />
      <div class="two">
        <div>
          <h2>Spec</h2>
          <Json value={algorithm} open={1} />
        </div>
        <div>
          <h2>Versions</h2>
          <table class="list">
            <Head columns={['Version', 'Created', 'Image', '']} />
            <tbody>
              {versions.map((v) => (
                <tr data-version={v.version}>
                  <td>
                    {v.version}
                    {v.tags?.length ? ` (${v.tags.join(', ')})` : ''}
                  </td>
                  <td>{when(v.created)}</td>
                  <td class="clip">{v.image || ''}</td>
                  <td>
                    {v.current ? (
                      <strong>current</strong>
                    ) : (
                      <button onClick={act(() => api('/versions/algorithms/apply', { method: 'POST', body: { name, version: v.version } }))}>
                        Make current
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Builds</h2>
          {builds.length === 0 && <p class="empty">No build: this algorithm runs its code without an image.</p>}
          {builds.length > 0 && (
            <table class="list">
              <Head columns={['Build', 'Status', 'Version', 'Started', '']} />
              <tbody>
                {builds.map((b) => (
                  <tr data-build={b.buildId}>
                    <td>{b.buildId}</td>
                    <td>
                      <Badge status={b.status} />
                    </td>
                    <td>{b.version}</td>
                    <td>{when(b.started || b.created)}</td>
                    <td>
                      <button class="link" onClick={() => setShownLog(b.buildId)}>
                        log
                      </button>{' '}
                      {['pending', 'active', 'running'].includes(b.status) ? (
                        <button class="link" onClick={act(() => api('/builds/stop', { method: 'POST', body: { buildId: b.buildId } }))}>
                          stop
                        </button>
                      ) : (
                        <button class="link" onClick={act(() => api('/builds/rerun', { method: 'POST', body: { buildId: b.buildId } }))}>
                          rerun
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {shownLog && <BuildLog buildId={shownLog} key={shownLog} />}
        </div>
      </div>
      <Apply name={name} onApplied={reload} />
    </section>
  );
}
