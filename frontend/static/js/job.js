// Job detail: every field, live progress, cancel and retry, the result by its shape (numbers,
// tables, images, files), the picture filling in band by band, and the chunk timeline across Ray nodes.

import { api, ApiError, followJob, isTerminal } from "./api.js";
import {
  chunksText, formatBytes, formatDuration, formatFullTime, formatInt, formatScalar, isScalar, percentOf, resultSummary, shortId,
} from "./format.js";
import { initLayout, signInProblem } from "./layout.js";
import { findKind, getKinds } from "./limits.js";
import { artifactList, drawBands, drawFinal, imageArtifact, isBandJob, resultNodes } from "./result.js";
import { isQueued, priorityOf, QUEUE_REFRESH_MS, setPriorityTag, setQueueNote } from "./schedule.js";
import { applyChunks, renderTimeline } from "./timeline.js";
import { $, confirmCancelJob, el, setBadge, setBusy, toast, updateProgress } from "./ui.js";

const JOB_ID = decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop() || "");
const base = `/jobs/${encodeURIComponent(JOB_ID)}`;
let addresses = new Map();
let chunkTimer = null;
let lastChunkLoad = 0;
let lastStatus = null;
let chunkData = null; // the last /chunks response, with the streamed chunks applied
// Per /chunks read in flight, the chunks streamed meanwhile (applied over its answer). Reads can overlap
// (a progress re-read, the end of the job, a resync): each keeps its own, none clears another's.
const streamedDuring = new Set();
let drawTimer = null;
let progressTimer = null;
let current = null; // the job as last seen
let paramsShown = false;
let resultShown = null; // the status whose result/files are shown
let queueTimer = null;

function toLogin() {
  window.location.replace(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

function setTime(id, iso) {
  const node = $(id);
  node.textContent = iso ? formatFullTime(iso) : "—";
}

function render(job) {
  current = job;
  document.title = `Job ${shortId(job.job_id)} (${job.status}) — Ray Jobs`;
  $("#job-short").textContent = shortId(job.job_id);
  $("#job-id").textContent = job.job_id;
  setBadge($("#job-badge"), job.status);
  setPriorityTag($("#job-priority-tag"), job);
  setQueueNote($("#job-queue"), job);
  updateProgress($("#job-progress"), job);
  $("#job-percent").textContent = `${percentOf(job)}%`;
  $("#job-chunks").textContent = chunksText(job);
  $("#f-result").textContent = job.status === "completed" ? resultSummary(job.result) : "—";
  $("#f-status").textContent = job.status;
  $("#f-kind").textContent = job.kind;
  $("#f-priority").textContent = priorityOf(job);
  $("#f-n").textContent = formatInt(job.n);
  $("#f-n-fact").hidden = job.n === null || job.n === undefined;
  renderParams(job);
  renderRetryOf(job.retry_of);
  $("#f-chunks").textContent = `${formatInt(job.completed_chunks)} of ${formatInt(job.total_chunks)} done`;
  $("#f-duration").textContent = formatDuration(job.duration_ms);
  setTime("#f-created", job.created_at);
  setTime("#f-started", job.started_at);
  setTime("#f-completed", job.completed_at);
  $("#f-detail").textContent = job.detail || "—";
  $("#f-detail-fact").classList.toggle("fact-wide", isQueued(job)); // what it waits for, on two columns
  $("#job-cancel").hidden = isTerminal(job.status);
  $("#job-retry").hidden = !(job.status === "failed" || job.status === "cancelled");
  if (job.status !== lastStatus) {
    if (lastStatus !== null) $("#job-live").textContent = job.status === "completed"
      ? `Job completed. Result: ${resultSummary(job.result)}.` : `Job ${job.status}.`;
    lastStatus = job.status;
  }
  if (isTerminal(job.status) && resultShown !== job.status) showResult(job);
  followQueueSoon();
}

// ---- the queue -----------------------------------------------------------------------------------

/** While the job waits in the queue: re-read it for its place (the runner rewrites it about once a
 *  second; the stream only speaks when the status or the finished chunks change). */
function followQueueSoon() {
  if (queueTimer || current?.status !== "pending") return;
  queueTimer = setTimeout(async () => {
    queueTimer = null;
    if (!document.hidden && current?.status === "pending") {
      try {
        const job = await api(base);
        if (current?.status === "pending") render(job); // not over a start the stream told meanwhile
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return toLogin();
      }
    }
    followQueueSoon();
  }, QUEUE_REFRESH_MS);
}

// ---- inputs ------------------------------------------------------------------------------------

/** The job's params as a definition list (not for the range kinds, whose only input is n above). */
function renderParams(job) {
  if (paramsShown || !job.params || typeof job.params !== "object") return;
  const entries = Object.entries(job.params);
  if (!entries.length || (entries.length === 1 && entries[0][0] === "n" && job.n !== null && job.n !== undefined)) return;
  paramsShown = true;
  const list = el("dl", { class: "params-list" }, entries.map(([key, value]) =>
    el("div", { "data-param": key },
      el("dt", { text: key }),
      el("dd", { class: isScalar(value) && typeof value !== "string" ? "num" : "mono" },
        isScalar(value) ? formatScalar(value) : compact(value)))));
  $("#f-params").replaceChildren(list);
  $("#f-params-fact").hidden = false;
  describeUploads(job, list);
}

function compact(value) {
  try {
    return JSON.stringify(value, (key, item) => (typeof item === "bigint" ? item.toString() : item));
  } catch {
    return "—";
  }
}

/** Name the uploaded files the params refer to (the kind's upload_fields): file name and size. */
async function describeUploads(job, list) {
  let kind = null;
  try {
    kind = findKind(await getKinds(), job.kind);
  } catch {
    return;
  }
  for (const field of kind?.upload_fields || []) {
    const id = job.params[field];
    if (typeof id !== "string") continue;
    try {
      const info = await api(`/uploads/${encodeURIComponent(id)}`);
      list.querySelector(`[data-param="${CSS.escape(field)}"] dd`)?.append(
        el("span", { class: "upload-note", text: ` — ${info.filename || "a file"}, ${formatBytes(info.size)}` }));
    } catch {
      /* the upload may have expired: its id is shown */
    }
  }
}

function renderRetryOf(retryOf) {
  const fact = $("#f-retry-of-fact");
  fact.hidden = !retryOf;
  if (!retryOf || fact.dataset.id === retryOf) return;
  fact.dataset.id = retryOf;
  $("#f-retry-of").replaceChildren(el("a", {
    class: "mono", href: `/dashboard/jobs/${encodeURIComponent(retryOf)}`, "aria-label": `Job ${shortId(retryOf)}, the job this one retries`,
  }, shortId(retryOf)));
}

// ---- result, files and the picture ---------------------------------------------------------------

/** Once the job has ended: the result by its shape and its files (GET …/artifacts). */
async function showResult(job) {
  resultShown = job.status;
  const card = $("#result-card");
  const image = job.status === "completed" ? imageArtifact(job.result) : null;
  if (image) {
    $("#job-picture-box").hidden = false;
    drawFinal($("#job-picture"), job, base);
    $("#job-picture-note").textContent = `The finished image, ${image}.`;
    card.hidden = false;
  }
  const draw = (names) => {
    if (job.status !== "completed") return;
    const nodes = resultNodes(job.result, { base, artifacts: names, skipImage: Boolean(image) });
    $("#job-result").replaceChildren(...nodes);
    if (nodes.length) card.hidden = false;
  };
  draw(null);
  let listing;
  try {
    listing = await api(`${base}/artifacts`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) toLogin();
    return; // no files (or a server without them): the result stands alone
  }
  const files = listing?.artifacts || [];
  if (!files.length && job.status !== "completed") return;
  draw(new Set(files.map((file) => file.name)));
  if (files.length) {
    $("#job-artifacts").replaceChildren(artifactList(files, base));
    $("#job-artifacts-box").hidden = false;
    card.hidden = false;
  }
}

/** While an image job runs: its finished bands at their rows, tinted by node (the timeline's colours). */
function drawPicture(layout) {
  if (!current || !chunkData) return;
  if (current.status === "completed" && imageArtifact(current.result)) return; // the finished image is shown
  const chunks = chunkData.chunks || [];
  if (!isBandJob(current, chunks)) return;
  $("#result-card").hidden = false;
  $("#job-picture-box").hidden = false;
  const shown = drawBands($("#job-picture"), current, chunks, base, layout?.nodes);
  $("#job-picture-note").textContent = `${formatInt(shown)} of ${formatInt(chunks.length)} bands so far. `
    + "Each band is tinted by the Ray node that computed it, in the colours of the chunk timeline below.";
}

function drawChunks() {
  const layout = renderTimeline($("#timeline"), chunkData, { addresses, table: "open", caption: `Chunks of job ${shortId(JOB_ID)}` });
  drawPicture(layout);
}

/** Chunks that report their progress (ctx.progress) are re-read every 1.5 s while the job runs. */
function followProgress() {
  clearTimeout(progressTimer);
  const reporting = (chunkData?.chunks || []).some((c) => c.status === "running" && typeof c.progress === "number");
  if (reporting && current && !isTerminal(current.status)) progressTimer = setTimeout(loadChunks, 1500);
}

/** Redraw at most about every 300 ms, however many chunk events arrive. */
function drawSoon() {
  if (!drawTimer) drawTimer = setTimeout(() => { drawTimer = null; if (chunkData) drawChunks(); }, 300);
}

/** Read every chunk (page load, the end of the job, a resync); streamed chunks fill in between. */
async function loadChunks() {
  lastChunkLoad = Date.now();
  const streamed = new Map();
  streamedDuring.add(streamed);
  try {
    const data = await api(`${base}/chunks`);
    chunkData = applyChunks(data, [...streamed.values()]);
    drawChunks();
    followProgress();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return toLogin();
    $("#timeline").textContent = `Couldn't load the chunks: ${error.message}`;
  } finally {
    streamedDuring.delete(streamed);
  }
}

/** Newly finished chunks from the stream: only those, never a re-read of all of them. */
function chunksFinished(chunks) {
  for (const streamed of streamedDuring) for (const chunk of chunks) streamed.set(chunk.index, chunk);
  if (chunkData) {
    applyChunks(chunkData, chunks);
    drawSoon();
  }
}

/** Re-read all chunks at most about once a second (resyncs, and polling without the stream). */
function chunksSoon() {
  if (chunkTimer) return;
  const wait = Math.max(0, 900 - (Date.now() - lastChunkLoad));
  chunkTimer = setTimeout(() => { chunkTimer = null; loadChunks(); }, wait);
}

async function loadAddresses() {
  try {
    const cluster = await api("/monitoring/cluster");
    addresses = new Map(cluster.nodes.map((n) => [n.node_id, n.address]));
  } catch {
    addresses = new Map();
  }
}

function setupActions() {
  const cancel = $("#job-cancel");
  cancel.addEventListener("click", async () => {
    if (!(await confirmCancelJob(JOB_ID))) return;
    cancel.disabled = true;
    try {
      render(await api(base, { method: "DELETE" }));
      toast("Job cancelled.", { kind: "ok" });
      loadChunks();
    } catch (error) {
      cancel.disabled = false;
      toast(error.message, { kind: "error" });
    }
  });

  const retry = $("#job-retry");
  retry.addEventListener("click", async () => {
    setBusy(retry, true, "Retrying…");
    try {
      const accepted = await api(`${base}/retry`, { method: "POST" });
      window.location.assign(`/dashboard/jobs/${encodeURIComponent(accepted.job_id)}`);
    } catch (error) {
      setBusy(retry, false);
      if (error instanceof ApiError && error.status === 401) return toLogin();
      toast(`Couldn't retry the job: ${error.message}`, { kind: "error" });
    }
  });
}

async function main() {
  const user = await initLayout({ active: "dashboard" });
  if (!user) {
    const problem = signInProblem();
    if (!problem) return toLogin();
    $("#job-loading").textContent = `Couldn't check your sign-in: ${problem.message} Reload the page to try again.`;
    return;
  }
  let job;
  try {
    job = await api(base);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return toLogin();
    $("#job-loading").remove();
    if (!(error instanceof ApiError) || error.status !== 404) $("#job-missing-text").textContent = error.message;
    $("#job-missing").hidden = false;
    document.title = "Job not found — Ray Jobs";
    return;
  }
  $("#job-loading").remove();
  $("#job-view").hidden = false;
  setupActions(); // before the buttons show
  render(job);
  await loadAddresses();
  await loadChunks();

  if (!isTerminal(job.status)) {
    const stop = followJob(base, (update) => {
      if (!update) return;
      render(update);
      if (isTerminal(update.status)) loadChunks(); // once: unfinished chunks now show as cancelled
    }, { onChunks: chunksFinished, onResync: chunksSoon });
    window.addEventListener("pagehide", stop);
  }
}

main();
