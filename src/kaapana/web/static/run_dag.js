// <kp-run-dag>: a run's steps as SVG nodes in topological layers (left to right) with edges
// from upstream steps, each node showing its tasks' states as coloured counts.
const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 220;
const NODE_H = 62;
const GAP_X = 56;
const GAP_Y = 18;
const STATES = ["succeeded", "running", "queued", "deferred", "pending", "failed", "upstream_failed", "canceled", "skipped"];

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

// Layer of a step: 0 without upstream steps, else one more than its deepest upstream step.
function layers(dag) {
  const depth = new Map();
  const visit = (step) => {
    if (!depth.has(step)) depth.set(step, 1 + Math.max(-1, ...(dag[step] ?? []).map(visit)));
    return depth.get(step);
  };
  Object.keys(dag).forEach(visit);
  return depth;
}

class RunDag extends HTMLElement {
  show(dag, tasks) {
    const steps = Object.keys(dag).length ? dag : Object.fromEntries(tasks.map((t) => [t.step, []]));
    const depth = layers(steps);
    const place = new Map();
    const perLayer = [];
    for (const step of Object.keys(steps)) {
      const layer = depth.get(step);
      perLayer[layer] = (perLayer[layer] ?? 0) + 1;
      place.set(step, { x: layer * (NODE_W + GAP_X) + 1, y: (perLayer[layer] - 1) * (NODE_H + GAP_Y) + 1 });
    }
    const width = perLayer.length * (NODE_W + GAP_X) - GAP_X + 2;
    const height = Math.max(...perLayer) * (NODE_H + GAP_Y) - GAP_Y + 2;
    const edges = [];
    for (const [step, upstream] of Object.entries(steps)) {
      const to = place.get(step);
      for (const source of upstream) {
        const from = place.get(source);
        const x1 = from.x + NODE_W;
        const y1 = from.y + NODE_H / 2;
        const y2 = to.y + NODE_H / 2;
        const mid = (x1 + to.x) / 2;
        edges.push(svg("path", { class: "dag-edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${to.x},${y2}`, "data-from": source, "data-to": step }));
      }
    }
    const nodes = Object.keys(steps).map((step) => this.node(step, place.get(step), tasks.filter((t) => t.step === step)));
    const drawing = svg("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}` }, ...edges, ...nodes);
    this.replaceChildren(drawing);
  }

  node(step, { x, y }, tasks) {
    const counts = new Map();
    for (const task of tasks) counts.set(task.state, (counts.get(task.state) ?? 0) + 1);
    const group = svg("g", { class: "dag-node", "data-step": step, transform: `translate(${x},${y})` },
      svg("title", {}, `${step}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ") || "no tasks"}`),
      svg("rect", { class: "dag-box", width: NODE_W, height: NODE_H, rx: 6 }),
      svg("text", { class: "dag-name", x: 10, y: 20 }, step));
    let offset = 0;
    let label = 10;
    for (const state of STATES) {
      const n = counts.get(state);
      if (!n) continue;
      const w = ((NODE_W - 20) * n) / tasks.length;
      group.append(svg("rect", { class: `dag-bar state-${state}`, x: 10 + offset, y: 28, width: w, height: 8 }));
      offset += w;
      group.append(svg("text", { class: `dag-count state-${state}`, x: label, y: 52 }, `${n} ${state.replace("_", " ")}`));
      label += 70;
    }
    return group;
  }
}

customElements.define("kp-run-dag", RunDag);
