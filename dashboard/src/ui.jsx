// Small shared pieces: status badges, progress bars, times, a JSON viewer,
// error boxes and a hook that loads data.

import { useEffect, useState, useCallback } from 'preact/hooks';

export const STATES = ['pending', 'active', 'paused', 'completed', 'failed', 'stopped', 'crashed'];

export function Badge({ status }) {
  return <span class={`badge s-${status}`} data-status={status}>{status}</span>;
}

export function ProgressBar({ percent, failed }) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return (
    <span class={`bar${failed ? ' has-failed' : ''}`} title={`${p.toFixed(0)}%`}>
      <span style={{ width: `${p}%` }} />
    </span>
  );
}

/** "1.2 s", "3 min 4 s", "2 h 5 min". */
export function duration(ms) {
  if (ms == null || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** How long a job ran, or has run so far. */
export function jobDuration(timings, now = Date.now()) {
  if (!timings) return '';
  if (timings.durationMs != null) return duration(timings.durationMs);
  const from = Date.parse(timings.started || timings.created);
  const to = timings.ended ? Date.parse(timings.ended) : now;
  return duration(to - from);
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {String(error.message || error)}
    </div>
  );
}

/** Load `fn()` now and when `deps` change: `[data, error, reload, setData]`. */
export function useLoad(fn, deps) {
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(null);
  const reload = useCallback(() => {
    let live = true;
    fn().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, deps);
  useEffect(reload, [reload]);
  return [data, error, reload, setData];
}

/** A collapsible JSON tree; big arrays show their first items. */
export function Json({ value, open = 2, name }) {
  return (
    <div class="json">
      <JsonNode value={value} depth={0} open={open} name={name} />
    </div>
  );
}

function JsonNode({ value, depth, open, name }) {
  const [expanded, setExpanded] = useState(depth < open);
  const [limit, setLimit] = useState(100);
  const label = name != null ? <span class="key">{name}: </span> : null;
  if (value === null || typeof value !== 'object') {
    const cls = value === null ? 'null' : typeof value;
    return (
      <div class="row">
        {label}
        <span class={cls}>{JSON.stringify(value)}</span>
      </div>
    );
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const brief = isArray ? `[${entries.length}]` : `{${entries.length}}`;
  return (
    <div class="row">
      <span class="toggle" onClick={() => setExpanded(!expanded)}>
        {expanded ? '▾' : '▸'}
      </span>
      {label}
      <span class="brief">{brief}</span>
      {expanded && (
        <div class="children">
          {entries.slice(0, limit).map(([k, v]) => (
            <JsonNode key={k} name={k} value={v} depth={depth + 1} open={open} />
          ))}
          {entries.length > limit && (
            <button class="link" onClick={() => setLimit(limit + 500)}>
              {entries.length - limit} more…
            </button>
          )}
        </div>
      )}
    </div>
  );
}

/** Offer `value` as a JSON file. */
export function download(name, value) {
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export function Tabs({ tabs, active, onSelect }) {
  return (
    <div class="tabs" role="tablist">
      {tabs.map(([id, label]) => (
        <button role="tab" class={id === active ? 'active' : ''} aria-selected={id === active} onClick={() => onSelect(id)}>
          {label}
        </button>
      ))}
    </div>
  );
}

/** A table's header row. */
export function Head({ columns }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th>{c}</th>
        ))}
      </tr>
    </thead>
  );
}
