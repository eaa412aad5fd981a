// Job detail: every field, live progress, cancel, and the chunk timeline across Ray nodes.

import { api, ApiError, followJob, isTerminal } from "./api.js";
import { chunksText, formatDuration, formatFullTime, formatInt, percentOf, shortId } from "./format.js";
import { initLayout, signInProblem } from "./layout.js";
import { applyChunks, renderTimeline } from "./timeline.js";
import { $, confirmCancelJob, setBadge, toast, updateProgress } from "./ui.js";

const JOB_ID = decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop() || "");
const base = `/jobs/${encodeURIComponent(JOB_ID)}`;
let addresses = new Map();
let chunkTimer = null;
let lastChunkLoad = 0;
let lastStatus = null;
let chunkData = null; // the last /chunks response, with the streamed chunks applied
let streamed = null; // chunks streamed while a /chunks read is in flight (applied over its answer)
let drawTimer = null;

function toLogin() {
  window.location.replace(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

function setTime(id, iso) {
  const node = $(id);
  node.textContent = iso ? formatFullTime(iso) : "—";
}

function render(job) {
  document.title = `Job ${shortId(job.job_id)} (${job.status}) — Ray Jobs`;
  $("#job-short").textContent = shortId(job.job_id);
  $("#job-id").textContent = job.job_id;
  setBadge($("#job-badge"), job.status);
  updateProgress($("#job-progress"), job);
  $("#job-percent").textContent = `${percentOf(job)}%`;
  $("#job-chunks").textContent = chunksText(job);
  $("#f-result").textContent = job.status === "completed" ? formatInt(job.result) : "—";
  $("#f-status").textContent = job.status;
  $("#f-kind").textContent = job.kind;
  $("#f-n").textContent = formatInt(job.n);
  $("#f-chunks").textContent = `${formatInt(job.completed_chunks)} of ${formatInt(job.total_chunks)} done`;
  $("#f-duration").textContent = formatDuration(job.duration_ms);
  setTime("#f-created", job.created_at);
  setTime("#f-started", job.started_at);
  setTime("#f-completed", job.completed_at);
  $("#f-detail").textContent = job.detail || "—";
  $("#job-cancel").hidden = isTerminal(job.status);
  if (job.status !== lastStatus) {
    if (lastStatus !== null) $("#job-live").textContent = job.status === "completed"
      ? `Job completed. Result: ${formatInt(job.result)}.` : `Job ${job.status}.`;
    lastStatus = job.status;
  }
}

function drawChunks() {
  renderTimeline($("#timeline"), chunkData, { addresses, table: "open", caption: `Chunks of job ${shortId(JOB_ID)}` });
}

/** Redraw at most about every 300 ms, however many chunk events arrive. */
function drawSoon() {
  if (!drawTimer) drawTimer = setTimeout(() => { drawTimer = null; if (chunkData) drawChunks(); }, 300);
}

/** Read every chunk (page load, the end of the job, a resync); streamed chunks fill in between. */
async function loadChunks() {
  lastChunkLoad = Date.now();
  streamed = new Map();
  try {
    const data = await api(`${base}/chunks`);
    chunkData = applyChunks(data, [...streamed.values()]);
    drawChunks();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return toLogin();
    $("#timeline").textContent = `Couldn't load the chunks: ${error.message}`;
  } finally {
    streamed = null;
  }
}

/** Newly finished chunks from the stream: only those, never a re-read of all of them. */
function chunksFinished(chunks) {
  if (streamed) for (const chunk of chunks) streamed.set(chunk.index, chunk);
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
  render(job);
  await loadAddresses();
  await loadChunks();

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
