// A job's result shown by its shape (so a user's own kind renders too): a number as an exact
// number; an object's `top` ([word, count] pairs) as a table, its scalar fields as a definition list,
// an `artifact` naming an image as that image, `errors` as a list; plus a download link per artifact.
// And the picture that fills in while an image job runs: each finished chunk's band at its rows,
// tinted by the Ray node that ran it.

import { formatBytes, formatInt, formatScalar, isScalar } from "./format.js";
import { el } from "./ui.js";

const IMAGE = /\.(png|jpe?g|gif|webp)$/i;
const MAX_ROWS = 1000;

/** The URL of one artifact under a job's base path (/jobs/{id} or its demo twin /jobs/demo/{id}). */
export function artifactUrl(base, name) {
  return `${base}/artifacts/${String(name).split("/").map(encodeURIComponent).join("/")}`;
}

const labelOf = (key) => String(key).replaceAll("_", " ");

/** [[word, count], ...] */
const isPairs = (value) => Array.isArray(value) && value.every((row) => Array.isArray(row) && row.length === 2 && isScalar(row[0]) && isScalar(row[1]));
const isItemErrors = (value) => Array.isArray(value) && value.every((item) => isScalar(item) || (item && typeof item === "object" && !Array.isArray(item)));

function pairsTable(rows, caption, headings = ["Word", "Count"]) {
  const shown = rows.slice(0, MAX_ROWS);
  return el("div", { class: "table-wrap result-table", role: "region", tabindex: "0", "aria-label": caption },
    el("table", { class: "table" },
      el("caption", { text: rows.length > shown.length ? `${caption} (first ${formatInt(shown.length)} of ${formatInt(rows.length)})` : caption }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", class: "num", text: "#" }),
        el("th", { scope: "col", text: headings[0] }),
        el("th", { scope: "col", class: "num", text: headings[1] }))),
      el("tbody", {}, shown.map(([key, value], i) => el("tr", {},
        el("td", { class: "num", "data-label": "#", text: formatInt(i + 1) }),
        el("td", { class: "word", "data-label": headings[0], text: formatScalar(key) }),
        el("td", { class: "num", "data-label": headings[1], text: formatScalar(value) }))))));
}

function errorList(items, title) {
  const list = el("ul", { class: "result-errors" }, items.slice(0, MAX_ROWS).map((item) => {
    if (isScalar(item)) return el("li", { text: formatScalar(item) });
    const name = item.item ?? item.name ?? item.file ?? item.index;
    const message = item.error ?? item.message ?? item.detail;
    if (message === undefined) return el("li", {}, valueNode(item, 1));
    return el("li", {}, name !== undefined ? el("span", { class: "mono", text: `${formatScalar(name)}: ` }) : null, String(message));
  }));
  return el("div", { class: "result-block" },
    el("h3", { class: "result-heading", text: `${title} (${formatInt(items.length)})` }), list);
}

/** Any JSON value as nodes (nested objects as definition lists, arrays as lists or tables). */
function valueNode(value, depth = 0, artifacts = null, base = "") {
  if (isScalar(value)) {
    if (typeof value === "string" && artifacts?.has(value)) {
      return el("a", { href: artifactUrl(base, value), download: value.split("/").pop(), text: value });
    }
    return el("span", { class: isScalar(value) && typeof value !== "string" ? "num" : null, text: formatScalar(value) });
  }
  if (depth > 3) return el("span", { class: "muted", text: Array.isArray(value) ? `${formatInt(value.length)} items` : "an object" });
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "muted", text: "none" });
    if (value.every(isScalar)) return el("span", { text: value.slice(0, MAX_ROWS).map(formatScalar).join(", ") });
    return el("ol", { class: "result-list" }, value.slice(0, MAX_ROWS).map((item) => el("li", {}, valueNode(item, depth + 1, artifacts, base))));
  }
  return el("dl", { class: "result-facts" }, Object.entries(value).map(([key, item]) =>
    el("div", {}, el("dt", { text: labelOf(key) }), el("dd", {}, valueNode(item, depth + 1, artifacts, base)))));
}

/**
 * The result of a completed job as nodes (empty for a plain number: the page shows it as the result).
 * options: {base: the job's API path, artifacts: Set of artifact names (null if unknown),
 *           skipImage: the page shows the `artifact` image itself (drawFinal)}
 */
export function resultNodes(result, { base, artifacts = null, skipImage = false } = {}) {
  if (isScalar(result)) return [];
  if (Array.isArray(result)) {
    if (isPairs(result)) return [pairsTable(result, "Result", ["Key", "Value"])];
    return [valueNode(result, 0, artifacts, base)];
  }
  const parts = [];
  const scalars = [];
  const rest = [];
  for (const [key, value] of Object.entries(result)) {
    if (key === "artifact" && typeof value === "string" && IMAGE.test(value)) {
      if (!skipImage) parts.push(el("figure", { class: "result-figure" },
        el("img", { class: "result-image", src: artifactUrl(base, value), alt: imageAlt(result, value) }),
        el("figcaption", { class: "hint", text: value })));
      scalars.push([key, value]);
    } else if (isScalar(value)) scalars.push([key, value]);
    else if (key === "top" && isPairs(value)) rest.push(pairsTable(value, `Top ${formatInt(value.length)} words`));
    else if (/errors$/.test(key) && isItemErrors(value)) {
      if (value.length) rest.push(errorList(value, capitalize(labelOf(key))));
      else scalars.push([key, "none"]);
    } else if (isPairs(value) && value.length) rest.push(pairsTable(value, capitalize(labelOf(key)), ["Key", "Value"]));
    else rest.push(el("div", { class: "result-block" }, el("h3", { class: "result-heading", text: capitalize(labelOf(key)) }),
      valueNode(value, 1, artifacts, base)));
  }
  if (scalars.length) {
    parts.push(el("dl", { class: "facts result-facts" }, scalars.map(([key, value]) =>
      el("div", { "data-key": key }, el("dt", { text: labelOf(key) }), el("dd", {}, valueNode(value, 1, artifacts, base))))));
  }
  return [...parts, ...rest];
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function imageAlt(result, name) {
  const size = Number.isFinite(Number(result.width)) && Number.isFinite(Number(result.height))
    ? `, ${formatInt(result.width)} × ${formatInt(result.height)} pixels` : "";
  return `Result image ${name}${size}`;
}

/** The artifact list (GET …/artifacts): a download link per file; files in folders (bands/…) folded away. */
export function artifactList(artifacts, base) {
  if (!artifacts.length) return el("p", { class: "muted", text: "This job wrote no files." });
  const item = (a) => el("li", { "data-artifact": a.name },
    el("a", { href: a.url && a.url.startsWith("/") ? a.url : artifactUrl(base, a.name), download: a.name.split("/").pop(), class: "artifact-link" },
      el("span", { class: "sr-only", text: "Download " }), a.name),
    el("span", { class: "artifact-meta", text: ` ${formatBytes(a.size)} · ${a.content_type || "unknown type"}` }),
    a.sha256 ? el("span", { class: "sr-only", text: `, SHA-256 ${a.sha256}` }) : null);
  const top = artifacts.filter((a) => !a.name.includes("/"));
  const nested = artifacts.filter((a) => a.name.includes("/"));
  const parts = [];
  if (top.length) parts.push(el("ul", { class: "artifact-list" }, top.map(item)));
  if (nested.length) {
    parts.push(el("details", { class: "disclosure" },
      el("summary", { text: `${formatInt(nested.length)} more file${nested.length === 1 ? "" : "s"} (${[...new Set(nested.map((a) => a.name.split("/")[0]))].join(", ")})` }),
      el("ul", { class: "artifact-list" }, nested.map(item))));
  }
  return el("div", {}, ...parts);
}

// ---- the picture filling in ----------------------------------------------------------------------

/** The band of a finished chunk of an image kind: {start, end, artifact} or null. */
export function bandOf(chunk) {
  const result = chunk && chunk.result;
  if (!result || typeof result !== "object" || typeof result.artifact !== "string" || !IMAGE.test(result.artifact)) return null;
  const start = Number(result.start ?? chunk.start);
  const end = Number(result.end ?? chunk.end);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return null;
  return { start, end, artifact: result.artifact };
}

/** A job whose params have a height and whose chunks return image bands (a mandelbrot-like job). */
export function isBandJob(job, chunks) {
  const height = Number(job?.params?.height);
  return Number.isInteger(height) && height > 0 && (chunks || []).some((chunk) => bandOf(chunk));
}

/**
 * Draw the bands of the finished chunks into `frame` (kept between calls, so each band's image
 * loads once), each at its row offset and tinted by its node's colour (nodes: Map node_id -> 1..8,
 * the timeline's palette). Returns how many bands are shown.
 */
export function drawBands(frame, job, chunks, base, nodes) {
  const height = Number(job.params.height);
  const width = Number(job.params.width);
  if (frame.dataset.state !== "bands") {
    frame.replaceChildren();
    frame.dataset.state = "bands";
  }
  if (Number.isFinite(width) && width > 0) frame.style.aspectRatio = `${width} / ${height}`;
  const total = chunks.length;
  let shown = 0;
  for (const chunk of chunks) {
    const band = bandOf(chunk);
    if (!band) continue;
    shown += 1;
    let node = frame.querySelector(`[data-index="${chunk.index}"]`);
    if (!node) {
      node = el("div", { class: "band", "data-index": chunk.index, "data-node": chunk.node_id || "" },
        el("img", { src: artifactUrl(base, band.artifact), alt: "", decoding: "async" }));
      frame.append(node);
    }
    node.style.top = `${(band.start / height) * 100}%`;
    node.style.height = `${((band.end - band.start + 1) / height) * 100}%`;
    const colour = nodes?.get(chunk.node_id || "unknown");
    for (const name of [...node.classList]) if (/^node-\d$/.test(name)) node.classList.remove(name);
    if (colour) node.classList.add(`node-${colour}`);
  }
  frame.setAttribute("role", "img");
  frame.setAttribute("aria-label", `The picture filling in: ${formatInt(shown)} of ${formatInt(total)} bands done, each tinted by the Ray node that computed it.`);
  return shown;
}

/** The finished picture: the job's own image, untinted (replaces the bands). */
export function drawFinal(frame, job, base) {
  const name = job.result.artifact;
  if (frame.dataset.state === "final") return;
  frame.dataset.state = "final";
  frame.removeAttribute("role");
  frame.removeAttribute("aria-label");
  frame.style.aspectRatio = "";
  frame.replaceChildren(el("img", { class: "result-image", src: artifactUrl(base, name), alt: imageAlt(job.result, name) }));
}

/** The image a result names in `artifact` (a .png and the like), or null. */
export const imageArtifact = (result) =>
  result && typeof result === "object" && typeof result.artifact === "string" && IMAGE.test(result.artifact) ? result.artifact : null;
