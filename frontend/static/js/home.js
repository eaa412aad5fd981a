// Home: the Try-It demo (submit, live progress, exact result, 429 countdown) and live cluster cards.

import { api, ApiError, followJob } from "./api.js";
import { chunksText, formatDuration, formatInt, formatNumber, kindLabel, percentOf } from "./format.js";
import { initLayout } from "./layout.js";
import { demoCanRun, rateText, showKinds, showLimits } from "./limits.js";
import { renderQueueCard } from "./schedule.js";
import { renderTimeline } from "./timeline.js";
import { $, clearFormErrors, readInt, setBadge, setFieldError, showAlert, showFieldErrors, updateProgress } from "./ui.js";

const CLUSTER_EVERY_MS = 5000;

initLayout({ active: "home" }).then((user) => {
  if (user) {
    const cta = $("#get-started");
    cta.textContent = "Open your dashboard";
    cta.href = "/dashboard";
  }
});

// ---- Try It ------------------------------------------------------------------------------------

// The demo form sends {n, chunks, kind}: kinds with other inputs are listed, for the dashboard.
showKinds($("#try-kind"), (kind) => (demoCanRun(kind) ? kindLabel(kind.name) : `${kindLabel(kind.name)} (sign in: dashboard)`),
  { usable: demoCanRun });

const form = $("#try-form");
const runButton = $("#try-run");
const errorBox = $("#try-error");
const limitBox = $("#try-limit");
const resultBox = $("#try-result");
const bar = $("#try-progress");
const live = $("#try-live");
let stopFollowing = null;
let countdownTimer = null;
let lastStatus = null;

async function validate() {
  await showLimits(); // the inputs' max attributes come from GET /kinds
  clearFormErrors(form);
  const n = readInt($("#try-n"), "n");
  const chunks = readInt($("#try-chunks"), "Chunks");
  if (n.error) setFieldError($("#try-n"), n.error);
  if (chunks.error) setFieldError($("#try-chunks"), chunks.error);
  if (n.error || chunks.error) {
    (n.error ? $("#try-n") : $("#try-chunks")).focus();
    return null;
  }
  return { n: n.value, chunks: chunks.value, kind: $("#try-kind").value };
}

for (const id of ["#try-n", "#try-chunks"]) {
  $(id).addEventListener("input", (event) => setFieldError(event.target, ""));
}

function render(job) {
  const percent = percentOf(job);
  setBadge($("#try-badge"), job.status);
  $("#try-chunks-done").textContent = chunksText(job);
  $("#try-percent").textContent = `${percent}%`;
  updateProgress(bar, job);
  $("#try-duration").textContent = job.duration_ms !== null && job.duration_ms !== undefined ? `took ${formatDuration(job.duration_ms)}` : "";
  if (job.status === "completed") {
    $("#try-value").textContent = formatInt(job.result);
  } else if (job.status === "failed" || job.status === "cancelled") {
    $("#try-value").textContent = "—";
  }
  if (job.status !== lastStatus) {
    lastStatus = job.status;
    if (job.status === "completed") live.textContent = `Demo job completed. Result: ${formatInt(job.result)}.`;
    else if (job.status === "failed") live.textContent = `Demo job failed: ${job.detail || "no reason given"}.`;
    else live.textContent = `Demo job ${job.status}.`;
  }
  if (job.status === "failed" && job.detail) showAlert(errorBox, `The job failed: ${job.detail}`);
}

async function showTimeline(jobId) {
  const box = $("#try-timeline");
  try {
    const chunks = await api(`/jobs/demo/${jobId}/chunks`);
    renderTimeline(box, chunks, { table: "collapsed", caption: "Demo job chunks" });
    box.hidden = false;
  } catch {
    box.hidden = true;
  }
}

/** The limit a 429 names ("Rate limit exceeded (3/hour)…"), else the one GET /kinds reported. */
async function limitText(error) {
  const named = /\(([^()]*\d[^()]*)\)/.exec(error.detail || "");
  if (named) return rateText(named[1], "runs");
  const config = await showLimits();
  return config ? rateText(config.limits.demo.rate_limit, "runs") : "the demo's rate limit";
}

function startCountdown(seconds, text) {
  clearInterval(countdownTimer);
  let left = Math.max(1, Math.ceil(seconds));
  const counter = $("#try-countdown");
  $("#try-limit-text").textContent = text;
  runButton.disabled = true;
  limitBox.hidden = false;
  live.textContent = `Demo limit reached: ${text}. You can run again in ${left} seconds.`;
  const tick = () => {
    counter.textContent = `${left} s`;
    if (left <= 0) {
      clearInterval(countdownTimer);
      limitBox.hidden = true;
      runButton.disabled = false;
      live.textContent = "You can run the demo again.";
    }
    left -= 1;
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (runButton.disabled) return;
  const body = await validate();
  if (!body) return;
  showAlert(errorBox, "");
  if (stopFollowing) stopFollowing();
  runButton.disabled = true;
  try {
    const accepted = await api("/jobs/demo", { method: "POST", body });
    lastStatus = null;
    resultBox.hidden = false;
    resultBox.dataset.used = "true";
    $("#try-timeline").hidden = true;
    $("#try-value").textContent = "—";
    render({ status: accepted.status, progress: 0, completed_chunks: 0, total_chunks: Math.min(body.chunks, body.n) });
    stopFollowing = followJob(`/jobs/demo/${accepted.job_id}`, (job, error) => {
      if (!job) {
        showAlert(errorBox, error ? error.message : "Lost track of the job.");
        runButton.disabled = false;
        return;
      }
      render(job);
      if (["completed", "failed", "cancelled"].includes(job.status)) {
        if (limitBox.hidden) runButton.disabled = false;
        showTimeline(job.job_id);
      }
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      startCountdown(error.retryAfter ?? 60, await limitText(error));
      return;
    }
    runButton.disabled = false;
    if (error instanceof ApiError && error.status === 422 && showFieldErrors(form, error.fieldErrors)) return;
    showAlert(errorBox, error.message || "Something went wrong. Please try again.");
  }
});

// ---- cluster cards -----------------------------------------------------------------------------

async function refreshCluster() {
  if (document.hidden) return;
  try {
    const c = await api("/monitoring/cluster");
    $("#cl-nodes").textContent = formatInt(c.nodes_alive);
    const cpus = c.nodes.filter((n) => n.alive).length;
    $("#cl-nodes-note").textContent = cpus === 1 ? "Ray node in the cluster" : "Ray nodes in the cluster";
    $("#cl-cpus").textContent = `${formatNumber(c.cpus_used, 1)} / ${formatNumber(c.cpus_total, 1)}`;
    const share = c.cpus_total ? Math.round((c.cpus_used / c.cpus_total) * 100) : 0;
    const meter = $("#cl-cpu-meter");
    meter.setAttribute("aria-valuenow", String(share));
    meter.setAttribute("aria-valuetext", `${formatNumber(c.cpus_used, 1)} of ${formatNumber(c.cpus_total, 1)} CPUs in use`);
    meter.querySelector(".progress-fill").style.width = `${share}%`;
    $("#cl-jobs").textContent = formatInt(c.jobs_active);
    $("#cl-jobs-note").textContent = `${formatInt(c.jobs_completed)} completed so far`;
    $("#cl-rate").textContent = formatNumber(c.chunks_per_second, 1);
    renderQueueCard($("#cl-queue"), c.scheduler ?? null);
    $("#cluster-error").textContent = "";
  } catch (error) {
    $("#cluster-error").textContent = `Cluster figures are unavailable right now (${error.message})`;
  }
}

refreshCluster();
setInterval(refreshCluster, CLUSTER_EVERY_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshCluster(); });
