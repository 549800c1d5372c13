// A job's tasks on a time axis (a Gantt chart): one band per node, each
// task a bar from its start to its end, packed into lanes where tasks ran
// side by side. Failed tasks are red. Up to LIMIT tasks are drawn.

import { api, seg } from '../api.js';
import { ErrorBox, duration, useLoad } from '../ui.jsx';

const LIMIT = 5000;
const LANE = 8;
const MAX_LANES = 12;
const LABEL = 150;
const WIDTH = 900;

export function Timeline({ jobId, status }) {
  const settled = !['pending', 'active', 'paused'].includes(status.status);
  const [tasks, error, reload] = useLoad(() => api(`/exec/tasks/${seg(jobId)}?limit=${LIMIT}`, { withHeaders: true }), [jobId, settled]);
  if (error) return <ErrorBox error={error} />;
  if (!tasks) return <p class="empty">Loading…</p>;
  const list = tasks.data.filter((t) => t.started && t.ended);
  if (!list.length) return <p class="empty">No finished task yet.</p>;
  const total = Number(tasks.headers.get('x-total-count')) || list.length;
  const start = Math.min(...list.map((t) => Date.parse(t.started)));
  const end = Math.max(...list.map((t) => Date.parse(t.ended)));
  const span = Math.max(1, end - start);
  const x = (iso) => LABEL + ((Date.parse(iso) - start) / span) * (WIDTH - LABEL - 10);
  const bands = [];
  let y = 20;
  for (const node of status.nodes) {
    const mine = list.filter((t) => t.nodeName === node.nodeName).sort((a, b) => a.started.localeCompare(b.started));
    if (!mine.length) continue;
    const laneEnds = [];
    const bars = mine.map((t) => {
      let lane = laneEnds.findIndex((e) => e <= t.started);
      if (lane < 0) lane = laneEnds.length < MAX_LANES ? laneEnds.length : laneEnds.indexOf([...laneEnds].sort()[0]);
      laneEnds[lane] = t.ended;
      return { t, lane };
    });
    const height = laneEnds.length * LANE + 8;
    bands.push({ node: node.nodeName, y, height, bars });
    y += height + 6;
  }
  return (
    <div class="timeline">
      <p class="muted">
        {list.length} task(s) over {duration(span)}
        {total > LIMIT ? ` (the first ${LIMIT} of ${total})` : ''}
        {!settled && (
          <button class="link" onClick={reload}>
            refresh
          </button>
        )}
      </p>
      <svg viewBox={`0 0 ${WIDTH} ${y + 10}`} role="img" aria-label="task timeline">
        <text x={LABEL} y="12" class="axis">
          0
        </text>
        <text x={WIDTH - 10} y="12" class="axis" text-anchor="end">
          {duration(span)}
        </text>
        {bands.map((b) => (
          <g>
            <text x="0" y={b.y + 12} class="band-label">
              {b.node}
            </text>
            <line x1={LABEL} x2={WIDTH - 10} y1={b.y + b.height + 3} y2={b.y + b.height + 3} class="band-rule" />
            {b.bars.map(({ t, lane }) => (
              <rect
                class={`bar-task s-${t.status}`}
                x={x(t.started)}
                y={b.y + 4 + lane * LANE}
                width={Math.max(1.5, x(t.ended) - x(t.started))}
                height={LANE - 2}
              >
                <title>
                  {t.nodeName} {t.batchIndex ?? ''} {t.status} {duration(Date.parse(t.ended) - Date.parse(t.started))}
                </title>
              </rect>
            ))}
          </g>
        ))}
      </svg>
    </div>
  );
}
