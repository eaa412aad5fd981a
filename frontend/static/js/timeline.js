// The chunk timeline: one bar per chunk on a shared time axis, one lane per worker process,
// coloured by the Ray node that ran it; plus the same numbers as an accessible table.

import { formatDuration, formatInt, formatTime, preciseMs, resultSummary, shortId } from "./format.js";
import { el } from "./ui.js";

const PALETTE_SIZE = 8;

const ms = preciseMs;

function nodeLabel(nodeId, addresses) {
  const address = addresses && addresses.get(nodeId);
  return address ? `${shortId(nodeId)} (${address})` : shortId(nodeId);
}

/** Facts for the chart: lanes, node colours, time span, parallelism. */
export function layoutChunks(chunks, now = Date.now()) {
  const started = chunks.filter((c) => c.started_at);
  const nodes = new Map(); // node_id -> colour index (1-based)
  const lanes = new Map(); // "node|pid" -> {node, pid, chunks: []}
  let t0 = Infinity;
  let t1 = -Infinity;
  let busy = 0;
  for (const chunk of [...started].sort((a, b) => ms(a.started_at) - ms(b.started_at))) {
    const node = chunk.node_id || "unknown";
    if (!nodes.has(node)) nodes.set(node, (nodes.size % PALETTE_SIZE) + 1);
    const key = `${node}|${chunk.worker_pid ?? "?"}`;
    if (!lanes.has(key)) lanes.set(key, { node, pid: chunk.worker_pid, chunks: [] });
    const start = ms(chunk.started_at);
    const end = chunk.ended_at ? ms(chunk.ended_at) : Math.max(start, now);
    lanes.get(key).chunks.push({ chunk, start, end });
    t0 = Math.min(t0, start);
    t1 = Math.max(t1, end);
    busy += end - start;
  }
  const span = started.length ? Math.max(t1 - t0, 1) : 0;
  return { nodes, lanes: [...lanes.values()], t0, t1, span, busy, startedCount: started.length, pending: chunks.length - started.length };
}

export function summarize(layout, total) {
  if (!layout.startedCount) return `No chunk has started yet (${formatInt(total)} waiting).`;
  const nodeCount = layout.nodes.size;
  const parts = [
    `${formatInt(layout.startedCount)} of ${formatInt(total)} chunks ran on ${nodeCount} node${nodeCount === 1 ? "" : "s"}`,
    `in ${layout.lanes.length} worker process${layout.lanes.length === 1 ? "" : "es"}`,
    `over ${formatDuration(layout.span)}`,
  ];
  const factor = layout.busy / layout.span;
  let text = `${parts.join(" ")}.`;
  if (layout.startedCount > 1 && factor >= 1.05) text += ` Chunk time adds up to ${formatDuration(layout.busy)}: ${factor.toFixed(1)}× parallel.`;
  if (layout.pending) text += ` ${formatInt(layout.pending)} not started yet.`;
  return text;
}

/** Put chunks (ChunkOut, as a `chunks` event sends them) into a /chunks response, by index. */
export function applyChunks(data, chunks) {
  const list = data.chunks || (data.chunks = []);
  for (const chunk of chunks) {
    const at = list[chunk.index]?.index === chunk.index ? chunk.index : list.findIndex((c) => c.index === chunk.index);
    if (at >= 0) list[at] = chunk;
    else list.push(chunk);
  }
  return data;
}

function tickLabels(span) {
  return [0, 0.25, 0.5, 0.75, 1].map((f) => ({ f, text: formatDuration(span * f) }));
}

/**
 * Render the timeline into `container` from a /chunks response.
 * options: {addresses: Map(node_id -> address), table: "open" | "collapsed" | "none", caption}
 */
export function renderTimeline(container, data, options = {}) {
  const chunks = data.chunks || [];
  const layout = layoutChunks(chunks);
  const summary = summarize(layout, chunks.length);
  const parts = [];

  if (!layout.startedCount) {
    parts.push(el("p", { class: "timeline-empty", text: summary }));
  } else {
    const legend = el("ul", { class: "timeline-legend", "aria-label": "Nodes" },
      [...layout.nodes.entries()].map(([node, colour]) => {
        const count = chunks.filter((c) => (c.node_id || "unknown") === node).length;
        return el("li", {},
          el("span", { class: `swatch node-${colour}`, "aria-hidden": "true" }),
          `Node ${nodeLabel(node, options.addresses)} · ${formatInt(count)} chunk${count === 1 ? "" : "s"}`);
      }));

    const lanes = el("div", { class: "timeline-lanes" }, layout.lanes.map((lane) => {
      const track = el("div", { class: "lane-track" });
      for (const { chunk, start, end } of lane.chunks) {
        const left = ((start - layout.t0) / layout.span) * 100;
        const width = Math.max(((end - start) / layout.span) * 100, 0.4);
        const duration = chunk.duration_ms ?? (end - start);
        const bar = el("div", {
          class: `timeline-bar node-${layout.nodes.get(lane.node)}`,
          title: [
            rangeOf(chunk) === "—" ? `Chunk #${chunk.index}` : `Chunk #${chunk.index} (${rangeOf(chunk)})`,
            `${chunk.status}, ${formatDuration(duration)}`,
            `node ${nodeLabel(lane.node, options.addresses)}, pid ${chunk.worker_pid ?? "?"}`,
            `started +${formatDuration(start - layout.t0)}`,
          ].join("\n"),
          "data-index": chunk.index,
          "data-status": chunk.status,
          "data-node": lane.node,
        }, el("span", { class: "bar-label", "aria-hidden": "true", text: `#${chunk.index}` }));
        bar.style.left = `${Math.min(left, 99.6)}%`;
        bar.style.width = `${Math.min(width, 100 - Math.min(left, 99.6))}%`;
        track.append(bar);
      }
      return el("div", { class: "timeline-lane" },
        el("span", { class: "lane-label", title: `node ${lane.node}, pid ${lane.pid ?? "?"}` }, `pid ${lane.pid ?? "?"}`),
        track);
    }));

    const ticks = el("div", { class: "axis-ticks" }, tickLabels(layout.span).map(({ f, text }) => {
      const tick = el("span", { text });
      tick.style.left = `${f * 100}%`;
      return tick;
    }));

    const chart = el("div", { class: "timeline-chart", role: "img", "aria-label": `Chunk timeline. ${summary}` },
      lanes,
      el("div", { class: "timeline-axis", "aria-hidden": "true" }, el("span", { class: "lane-label", text: "time" }), ticks));
    parts.push(legend, chart);
  }
  parts.push(el("p", { class: "timeline-summary", text: summary }));

  if (options.table !== "none" && chunks.length) {
    const table = chunkTable(chunks, layout, options);
    if (options.table === "collapsed" || chunks.length > 32) {
      parts.push(el("details", { class: "disclosure" }, el("summary", { text: `Chunk table (${formatInt(chunks.length)} rows)` }), table));
    } else {
      parts.push(el("h3", { class: "card-title section-gap", text: "Chunks" }),
        el("p", { class: "hint scroll-hint", text: "Scroll the table sideways for node, PID, timing and result." }), table);
    }
  }
  const wasOpen = container.querySelector("details.disclosure")?.open;
  container.replaceChildren(el("div", { class: "timeline" }, ...parts));
  if (wasOpen) container.querySelector("details.disclosure").open = true;
  return layout;
}

const hasValue = (value) => value !== null && value !== undefined;
const rangeOf = (c) => (hasValue(c.start) || hasValue(c.end) ? `${formatInt(c.start)}–${formatInt(c.end)}` : "—");

/** A chunk's attempts: how many, and the error of each failed one (a transient error retried). */
function attemptsCell(td, chunk) {
  const attempts = Array.isArray(chunk.attempts) ? chunk.attempts : [];
  if (!attempts.length) {
    td.textContent = "—";
    return;
  }
  const failed = attempts.map((attempt, i) => ({ ...attempt, number: i + 1 })).filter((attempt) => attempt.error);
  td.append(el("span", { class: "num", text: formatInt(attempts.length) }));
  if (failed.length) {
    td.append(el("details", { class: "attempts" },
      el("summary", { text: `${formatInt(failed.length)} failed` }),
      el("ol", { class: "attempt-errors" }, failed.map((attempt) => el("li", { value: String(attempt.number) },
        el("span", { class: "muted", text: `Attempt ${attempt.number}${attempt.ended_at ? `, ${formatTime(attempt.ended_at)}` : ""}: ` }),
        String(attempt.error))))));
  }
}

/** A running chunk's own progress (reported by the kind), as a small bar and a percentage. */
function progressCell(td, chunk) {
  if (chunk.status === "completed") {
    td.textContent = "100%";
    return;
  }
  if (chunk.status !== "running" || typeof chunk.progress !== "number") {
    td.textContent = "—";
    return;
  }
  const percent = Math.max(0, Math.min(100, Math.floor(chunk.progress * 100)));
  const fill = el("div", { class: "progress-fill" });
  fill.style.width = `${percent}%`;
  td.append(el("div", { class: "mini-progress" },
    el("div", {
      class: "progress", role: "progressbar", "aria-label": `Progress of chunk #${chunk.index}`, "data-state": "running",
      "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(percent),
    }, fill),
    el("span", { text: `${percent}%` })));
}

function chunkTable(chunks, layout, options) {
  const head = ["Chunk", "Range", "Status", "Node", "PID", "Started", "Duration", "Result"];
  const numeric = new Set(["PID", "Started", "Duration", "Result", "Attempts"]);
  // Columns of the newer chunk records, shown when the server sends them.
  const withAttempts = chunks.some((c) => Array.isArray(c.attempts));
  const withProgress = chunks.some((c) => c.status === "running" && typeof c.progress === "number");
  if (withAttempts) head.push("Attempts");
  if (withProgress) head.push("Progress");
  const rows = chunks.map((c) => {
    const colour = layout.nodes.get(c.node_id || "unknown");
    const start = c.started_at ? `+${formatDuration(ms(c.started_at) - layout.t0)}` : "—";
    const cells = [
      `#${c.index}`,
      rangeOf(c),
      null,
      null,
      c.worker_pid ?? "—",
      start,
      formatDuration(c.duration_ms),
      c.result === null || c.result === undefined ? "—" : resultSummary(c.result),
    ];
    return el("tr", { "data-index": c.index }, head.map((name, i) => cells[i]).map((value, i) => {
      const td = el("td", { "data-label": head[i], class: numeric.has(head[i]) ? "num" : null });
      if (i === 2) td.append(el("span", { class: `badge badge-${c.status}`, text: c.status }));
      else if (i === 3) {
        if (c.node_id) {
          td.append(el("span", { class: "row nowrap" },
            el("span", { class: `swatch node-${colour}`, "aria-hidden": "true" }),
            el("span", { class: "mono", title: c.node_id, text: nodeLabel(c.node_id, options.addresses) })));
        } else td.textContent = "—";
      } else if (head[i] === "Attempts") attemptsCell(td, c);
      else if (head[i] === "Progress") progressCell(td, c);
      else td.textContent = String(value);
      if (i === 7) td.classList.add("result-cell");
      return td;
    }));
  });
  return el("div", { class: "table-wrap", role: "region", tabindex: "0", "aria-label": "Chunk table" },
    el("table", { class: "table chunk-table" },
      el("caption", { class: "sr-only", text: options.caption || "Chunks: range, node, worker process and timing" }),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", class: numeric.has(h) ? "num" : null, text: h })))),
      el("tbody", {}, rows)));
}
