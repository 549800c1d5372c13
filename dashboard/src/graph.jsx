// A pipeline's DAG drawn as SVG: dagre lays the nodes out left to right;
// each box shows the node, its algorithm, its state (colour) and, for a
// job, its batch counts. Clicking a box selects the node.

import { Graph, layout } from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';

const W = 190;
const H = 64;

/**
 * nodes: [{nodeName, algorithmName, status?, total?, done?, failed?, running?, queued?}]
 * edges: [{from, to, waitAny?}]
 */
export function DagGraph({ nodes, edges, selected, onSelect, marked }) {
  const drawn = useMemo(() => place(nodes, edges), [nodes.map((n) => n.nodeName).join('\n'), JSON.stringify(edges)]);
  const byName = Object.fromEntries(nodes.map((n) => [n.nodeName, n]));
  return (
    <svg
      class="dag"
      viewBox={`-10 -10 ${drawn.width + 20} ${drawn.height + 20}`}
      width={drawn.width + 20}
      height={drawn.height + 20}
      role="img"
      aria-label="pipeline graph"
    >
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" />
        </marker>
      </defs>
      {drawn.edges.map((e) => (
        <polyline class={`edge${e.waitAny ? ' wait-any' : ''}`} points={e.points.map((p) => `${p.x},${p.y}`).join(' ')} marker-end="url(#arrow)" />
      ))}
      {drawn.nodes.map(({ name, x, y }) => {
        const n = byName[name] || { nodeName: name };
        const state = n.status || 'none';
        const cls = `node s-${state}${selected === name ? ' selected' : ''}${marked === name ? ' marked' : ''}`;
        return (
          <g class={cls} transform={`translate(${x - W / 2},${y - H / 2})`} onClick={() => onSelect && onSelect(name)} data-node={name} data-status={state}>
            <rect width={W} height={H} rx="8" />
            <text x="10" y="22" class="name">{name}</text>
            <text x="10" y="40" class="algorithm">{n.algorithmName}</text>
            {n.total != null && <text x="10" y="56" class="counts">{counts(n)}</text>}
            {n.status && <text x={W - 10} y="22" class="state" text-anchor="end">{n.status}</text>}
          </g>
        );
      })}
    </svg>
  );
}

function counts(n) {
  const parts = [`${n.done}/${n.total}`];
  if (n.running) parts.push(`${n.running} running`);
  if (n.queued) parts.push(`${n.queued} queued`);
  if (n.failed) parts.push(`${n.failed} failed`);
  if (n.cached) parts.push(`${n.cached} cached`);
  return parts.join(' · ');
}

function place(nodes, edges) {
  const g = new Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 56, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  nodes.forEach((n) => g.setNode(n.nodeName, { width: W, height: H }));
  edges.filter((e) => g.hasNode(e.from) && g.hasNode(e.to)).forEach((e) => g.setEdge(e.from, e.to, { waitAny: e.waitAny }));
  layout(g);
  return {
    width: g.graph().width || W,
    height: g.graph().height || H,
    nodes: g.nodes().map((name) => ({ name, x: g.node(name).x, y: g.node(name).y })),
    edges: g.edges().map((e) => ({ points: g.edge(e).points, waitAny: g.edge(e).waitAny })),
  };
}
