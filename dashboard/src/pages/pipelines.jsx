// Stored pipelines: the list (with cron triggers), and one pipeline's
// descriptor to read, edit and store (the server's validation error is
// shown, and the node it names is marked in the graph), its graph, and a
// run form with a flowInput editor.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { DagGraph } from '../graph.jsx';
import { ErrorBox, Head, useLoad, when } from '../ui.jsx';

const TEMPLATE = {
  name: 'my-pipeline',
  nodes: [{ nodeName: 'first', algorithmName: 'my-algorithm', input: ['@flowInput.data'] }],
  flowInput: { data: 1 },
};

export function PipelinesPage() {
  const [pipelines, error] = useLoad(() => Promise.all([api('/store/pipelines'), api('/cron/list')]), []);
  if (error) return <ErrorBox error={error} />;
  if (!pipelines) return <p class="empty">Loading…</p>;
  const [list, crons] = pipelines;
  const cron = Object.fromEntries(crons.map((c) => [c.name, c]));
  return (
    <section>
      <div class="toolbar">
        <h1>Pipelines</h1>
        <span class="spacer" />
        <a class="button" href="#/pipelines/%2Bnew">
          New pipeline
        </a>
      </div>
      {list.length === 0 && <p class="empty">No stored pipeline: store one here or with `distributedkubectl pipeline store`.</p>}
      {list.length > 0 && (
        <table class="list">
          <Head columns={['Name', 'Nodes', 'Description', 'Cron']} />
          <tbody>
            {list.map((p) => (
              <tr data-pipeline={p.name}>
                <td>
                  <a href={`#/pipelines/${encodeURIComponent(p.name)}`}>{p.name}</a>
                </td>
                <td>{p.nodes.length}</td>
                <td>{p.description}</td>
                <td>{cron[p.name] ? `${cron[p.name].pattern}${cron[p.name].enabled ? '' : ' (off)'}` : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** `node 'B', input 1: …` → {node: 'B', input: 1}, as the server names where a descriptor is wrong. */
export function whereWrong(message) {
  const m = /node '([^']+)'(?:, input (\d+))?/.exec(message || '');
  return m ? { node: m[1], input: m[2] != null ? Number(m[2]) : null } : null;
}

/** Select the line that names `node` in the editor and scroll to it. */
function showNode(textarea, node) {
  const m = new RegExp(`["']?nodeName["']?\\s*:\\s*["']?${node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?`).exec(textarea.value);
  if (!m) return;
  textarea.focus();
  textarea.setSelectionRange(m.index, m.index + m[0].length);
  const line = textarea.value.slice(0, m.index).split('\n').length;
  textarea.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(textarea).lineHeight || '18'));
}

/** The `name` of a JSON or YAML descriptor. */
function nameOf(text) {
  try {
    return JSON.parse(text).name;
  } catch (_) {
    return /^name:\s*["']?([^"'\s#]+)/m.exec(text)?.[1];
  }
}

export function PipelinePage({ name }) {
  const isNew = name === '+new';
  const [text, setText] = useState(isNew ? JSON.stringify(TEMPLATE, null, 2) : null);
  const [graph, setGraph] = useState(null);
  const [problem, setProblem] = useState(null);
  const [saved, setSaved] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [cron, setCron] = useState(null);
  const [stored, setStored] = useState(!isNew);
  const editor = useRef(null);

  const [format, setFormat] = useState('json');
  const [original, setOriginal] = useState(null);
  const load = (as) =>
    api(`/store/pipelines/${seg(name)}?format=${as}`, { text: true }).then((t) => {
      const shown = as === 'json' ? JSON.stringify(JSON.parse(t), null, 2) : t;
      setText(shown);
      setOriginal(shown);
      setFormat(as);
    }, setLoadError);
  useEffect(() => {
    if (isNew) return;
    load('json');
    api('/cron/list').then((list) => setCron(list.find((c) => c.name === name) || null), () => {});
  }, [name]);

  // The graph follows the text: redrawn by the server when the descriptor parses.
  useEffect(() => {
    if (text == null) return;
    const timer = setTimeout(() => {
      api('/store/pipelines/graph', { method: 'POST', body: text }).then(
        (g) => setGraph(g),
        () => {},
      );
    }, 300);
    return () => clearTimeout(timer);
  }, [text]);

  const save = async () => {
    setProblem(null);
    setSaved(null);
    try {
      await api('/store/pipelines', { method: stored ? 'PUT' : 'POST', body: text });
      setSaved(`stored at ${new Date().toLocaleTimeString()}`);
      setOriginal(text);
      if (!stored) {
        setStored(true);
        const storedName = nameOf(text);
        if (storedName) location.hash = `#/pipelines/${encodeURIComponent(storedName)}`;
      }
    } catch (e) {
      setProblem(e);
      const at = whereWrong(e.message);
      if (at && editor.current) showNode(editor.current, at.node);
    }
  };

  if (loadError) return <ErrorBox error={loadError} />;
  if (text == null) return <p class="empty">Loading…</p>;
  const wrong = problem && whereWrong(problem.message);
  const nodes = (graph?.nodes || []).map((n) => ({ nodeName: n.nodeName, algorithmName: n.algorithmName }));
  const edges = (graph?.edges || []).map((e) => ({ from: e.from, to: e.to, waitAny: e.value?.types?.includes('waitAny') }));
  return (
    <section class="pipeline">
      <div class="toolbar">
        <h1>
          <a href="#/pipelines">Pipelines</a> / {isNew ? 'new' : name}
        </h1>
        <span class="spacer" />
        {!isNew && stored && <CronSwitch name={name} entry={cron} onChange={setCron} />}
      </div>
      <div class="two">
        <div>
          <h2>Descriptor</h2>
          <p class="hint">
            JSON or YAML, as `pipeline store` takes it. The server checks it when you store it.{' '}
            {!isNew && (
              <span class="formats">
                {['json', 'yaml'].map((f) => (
                  <button
                    class={`link${format === f ? ' active' : ''}`}
                    disabled={text !== original && format !== f}
                    title={text !== original ? 'store or undo your edits first' : `show the stored descriptor as ${f.toUpperCase()}`}
                    onClick={() => load(f)}
                  >
                    {f.toUpperCase()}
                  </button>
                ))}
              </span>
            )}
          </p>
          <textarea ref={editor} class="code" spellcheck={false} rows={24} aria-label="descriptor" value={text} onInput={(e) => setText(e.target.value)} />
          <div class="actions">
            <button class="primary" onClick={save}>
              {stored ? 'Store' : 'Store new pipeline'}
            </button>
            {saved && <span class="ok">{saved}</span>}
          </div>
          {problem && (
            <div class="error" role="alert" data-node={wrong?.node} data-input={wrong?.input}>
              {problem.message}
            </div>
          )}
        </div>
        <div>
          <h2>Graph</h2>
          {nodes.length ? <DagGraph nodes={nodes} edges={edges} marked={wrong?.node} /> : <p class="empty">Nothing to draw yet.</p>}
          {stored && !isNew && <RunForm name={name} text={text} />}
        </div>
      </div>
    </section>
  );
}

/** The pipeline's cron trigger: on or off, its pattern, its next run. */
function CronSwitch({ name, entry, onChange }) {
  const [error, setError] = useState(null);
  const [pattern, setPattern] = useState(entry?.pattern || '0 * * * *');
  const enabled = entry?.enabled;
  const toggle = async () => {
    setError(null);
    try {
      const path = enabled ? '/cron/stop' : '/cron/start';
      onChange(await api(path, { method: 'POST', body: { name, pattern } }));
    } catch (e) {
      setError(e);
    }
  };
  return (
    <span class="cron" data-cron={enabled ? 'on' : 'off'}>
      cron{' '}
      {enabled ? (
        <>
          <code>{entry.pattern}</code> on, next run {when(entry.nextRun)}
        </>
      ) : (
        <input aria-label="cron pattern" value={pattern} onInput={(e) => setPattern(e.target.value)} size={12} />
      )}{' '}
      <button onClick={toggle}>{enabled ? 'Turn off' : 'Turn on'}</button>
      <ErrorBox error={error} />
    </span>
  );
}

function RunForm({ name, text }) {
  let initial = '{}';
  try {
    initial = JSON.stringify(JSON.parse(text).flowInput || {}, null, 2);
  } catch (_) {
    /* YAML: start from an empty flowInput */
  }
  const [flowInput, setFlowInput] = useState(initial);
  const [error, setError] = useState(null);
  const run = async () => {
    setError(null);
    let parsed;
    try {
      parsed = JSON.parse(flowInput);
    } catch (e) {
      return setError(new Error(`flowInput is not JSON: ${e.message}`));
    }
    try {
      const started = await api('/exec/stored', { method: 'POST', body: { name, flowInput: parsed } });
      location.hash = `#/jobs/${encodeURIComponent(started.jobId)}`;
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="run">
      <h2>Run</h2>
      <p class="hint">flowInput (JSON), merged over the stored one.</p>
      <textarea class="code" spellcheck={false} rows={6} aria-label="flowInput" value={flowInput} onInput={(e) => setFlowInput(e.target.value)} />
      <div class="actions">
        <button class="primary" onClick={run}>
          Run {name}
        </button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}
