// Dashboard: submit jobs, stats, API tokens, and the job history with live rows over one SSE stream.

import { api, ApiError, followMyJobs, isTerminal } from "./api.js";
import { chunksText, formatDuration, formatFullTime, formatInt, kindLabel, percentOf, shortId } from "./format.js";
import { initLayout, signInProblem } from "./layout.js";
import { showKinds, showLimits } from "./limits.js";
import {
  $, badge, clearFormErrors, confirmCancelJob, confirmDialog, copyButton, el, progressBar, readInt, setBadge, setBusy,
  setFieldError, showAlert, showFieldErrors, toast, updateProgress,
} from "./ui.js";

const PAGE_SIZE = 10;
const POLL_MS = 2000; // only when the live stream is refused
const state = { offset: 0, total: 0, status: "", stopStream: null, pollTimer: null, mine: new Set(), lastToken: null };

function toLogin() {
  window.location.replace(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
}

function handleAuthError(error) {
  if (error instanceof ApiError && error.status === 401) {
    toLogin();
    return true;
  }
  return false;
}

// ---- compact times -----------------------------------------------------------------------------

const TODAY = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const OTHER_DAY = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

function timeCell(iso) {
  if (!iso) return document.createTextNode("—");
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return el("time", { datetime: iso, title: formatFullTime(iso), text: (sameDay ? TODAY : OTHER_DAY).format(date) });
}

// ---- stats -------------------------------------------------------------------------------------

async function loadStats() {
  try {
    const s = await api("/me/stats");
    $("#stat-total").textContent = formatInt(s.total_jobs);
    $("#stat-total-note").textContent = s.running ? `${formatInt(s.running)} active now` : "none active";
    $("#stat-completed").textContent = formatInt(s.completed);
    $("#stat-completed-note").textContent = s.total_jobs ? `${Math.round((s.completed / s.total_jobs) * 100)}% of all jobs` : "no jobs yet";
    $("#stat-failed").textContent = formatInt(s.failed);
    $("#stat-failed-note").textContent = `${formatInt(s.cancelled)} cancelled`;
    $("#stat-avg").textContent = s.avg_duration_ms === null ? "—" : formatDuration(s.avg_duration_ms);
  } catch (error) {
    if (!handleAuthError(error)) toast(`Couldn't load your statistics: ${error.message}`, { kind: "error" });
  }
}

let statsTimer = null;
function refreshStatsSoon() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, 300);
}

// ---- job table ---------------------------------------------------------------------------------

function jobRow(job) {
  const bar = progressBar(`Progress of job ${shortId(job.job_id)}`);
  const row = el("tr", { "data-job-id": job.job_id, "data-status": job.status },
    el("td", { "data-label": "Job" },
      el("div", {},
        el("a", { class: "mono", href: `/dashboard/jobs/${job.job_id}`, "aria-label": `Job ${shortId(job.job_id)} details` }, shortId(job.job_id)),
        el("div", { class: "small muted", text: kindLabel(job.kind) }))),
    el("td", { "data-label": "Status", "data-cell": "status" }, badge(job.status)),
    el("td", { "data-label": "Progress" }, el("div", { class: "mini-progress" }, bar, el("span", { "data-cell": "chunks" }))),
    el("td", { "data-label": "n", class: "num", text: formatInt(job.n) }),
    el("td", { "data-label": "Created", "data-cell": "created" }),
    el("td", { "data-label": "Started", "data-cell": "started" }),
    el("td", { "data-label": "Completed", "data-cell": "completed" }),
    el("td", { "data-label": "Result", class: "num result-cell", "data-cell": "result" }),
    el("td", { "data-label": "Detail", class: "detail-cell", "data-cell": "detail" }),
    el("td", { "data-label": "Actions", "data-cell": "actions" }));
  fillRow(row, job);
  return row;
}

function fillRow(row, job) {
  const cell = (name) => row.querySelector(`[data-cell="${name}"]`);
  row.dataset.status = job.status;
  setBadge(cell("status").firstChild, job.status);
  updateProgress(row.querySelector('[role="progressbar"]'), job);
  cell("chunks").textContent = `${percentOf(job)}% · ${chunksText(job).replace(" chunks", "")}`;
  cell("created").replaceChildren(timeCell(job.created_at));
  cell("started").replaceChildren(timeCell(job.started_at));
  cell("completed").replaceChildren(timeCell(job.completed_at));
  cell("result").textContent = job.status === "completed" ? formatInt(job.result) : "—";
  const detail = cell("detail");
  detail.textContent = job.detail || (job.duration_ms !== null && job.duration_ms !== undefined ? formatDuration(job.duration_ms) : "—");
  detail.title = job.detail || "";
  detail.classList.toggle("text-danger", job.status === "failed");
  const actions = cell("actions");
  if (isTerminal(job.status)) {
    actions.replaceChildren(el("a", { class: "btn btn-ghost btn-sm", href: `/dashboard/jobs/${job.job_id}`, "aria-label": `View job ${shortId(job.job_id)}` }, "View"));
  } else if (!actions.querySelector(".cancel-job")) {
    const cancel = el("button", { type: "button", class: "btn btn-danger btn-sm cancel-job", "aria-label": `Cancel job ${shortId(job.job_id)}` }, "Cancel");
    cancel.addEventListener("click", () => cancelJob(job.job_id, cancel));
    actions.replaceChildren(cancel);
  }
}

// ---- live rows: one stream for all of the user's jobs ------------------------------------------

const rowOf = (jobId) => document.querySelector(`tr[data-job-id="${CSS.escape(jobId)}"]`);
const unfinishedRows = () => [...document.querySelectorAll("#jobs-body tr[data-job-id]")]
  .filter((row) => !isTerminal(row.dataset.status));

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadJobs, 300);
}

/** A job's new state from the stream (or a poll): update its row, announce its end once. */
function applyJob(job) {
  const row = rowOf(job.job_id);
  if (!row) {
    // a job this page does not show yet (another tab, the API) that belongs on it
    if (state.offset === 0 && (!state.status || state.status === job.status)) reloadSoon();
    return;
  }
  const wasTerminal = isTerminal(row.dataset.status);
  fillRow(row, job);
  if (!wasTerminal && isTerminal(job.status)) {
    $("#jobs-live").textContent = `Job ${shortId(job.job_id)} ${job.status}.`;
    if (state.mine.has(job.job_id) && job.status === "completed") {
      toast(`Job ${shortId(job.job_id)} completed: ${formatInt(job.result)}`, { kind: "ok" });
    } else if (state.mine.has(job.job_id) && job.status === "failed") {
      toast(`Job ${shortId(job.job_id)} failed: ${job.detail || "no reason given"}`, { kind: "error" });
    }
    refreshStatsSoon();
  }
}

/** Without the stream: read each unfinished row's job every POLL_MS. */
async function pollRows() {
  clearTimeout(state.pollTimer);
  await Promise.all(unfinishedRows().map(async (row) => {
    try {
      applyJob(await api(`/jobs/${row.dataset.jobId}`));
    } catch (error) {
      handleAuthError(error);
    }
  }));
  state.pollTimer = setTimeout(pollRows, POLL_MS);
}

function startLive() {
  state.stopStream = followMyJobs({
    onJob: applyJob,
    onRemoved: () => reloadSoon(),
    onResync: () => { if (unfinishedRows().length) reloadSoon(); }, // changes before this connection
    onDown: () => { state.stopStream = null; pollRows(); },
  });
}

function stopLive() {
  if (state.stopStream) state.stopStream();
  state.stopStream = null;
  clearTimeout(state.pollTimer);
}

async function loadJobs() {
  const body = $("#jobs-body");
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset) });
  if (state.status) params.set("status", state.status);
  body.setAttribute("aria-busy", "true");
  try {
    const page = await api(`/jobs?${params}`);
    if (!page.items.length && state.offset > 0 && page.total > 0) {
      state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      return loadJobs();
    }
    state.total = page.total;
    if (!page.items.length) {
      const message = state.status ? `No ${state.status} jobs.` : "No jobs yet. Submit one above and watch it run.";
      body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "10", text: message })));
    } else {
      body.replaceChildren(...page.items.map(jobRow));
    }
    renderPager();
  } catch (error) {
    if (handleAuthError(error)) return;
    body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "10", text: `Couldn't load your jobs: ${error.message}` })));
  } finally {
    body.removeAttribute("aria-busy");
  }
}

function renderPager() {
  const first = state.total ? state.offset + 1 : 0;
  const last = Math.min(state.offset + PAGE_SIZE, state.total);
  $("#page-info").textContent = state.total ? `Showing ${formatInt(first)}–${formatInt(last)} of ${formatInt(state.total)}` : "";
  $("#page-prev").disabled = state.offset === 0;
  $("#page-next").disabled = state.offset + PAGE_SIZE >= state.total;
}

async function cancelJob(jobId, button) {
  if (!(await confirmCancelJob(jobId))) return;
  button.disabled = true;
  try {
    const job = await api(`/jobs/${jobId}`, { method: "DELETE" });
    const row = rowOf(jobId);
    if (row) fillRow(row, job);
    toast(`Job ${shortId(jobId)} cancelled.`, { kind: "ok" });
    refreshStatsSoon();
  } catch (error) {
    if (handleAuthError(error)) return;
    button.disabled = false;
    toast(error.message, { kind: "error" });
    if (error.status === 409) loadJobs();
  }
}

// ---- submit form -------------------------------------------------------------------------------

function setupSubmit() {
  const form = $("#job-form");
  const button = $("#job-submit");
  const errorBox = $("#job-form-error");
  showKinds($("#job-kind"), (kind) => `${kind.name} — ${kind.description}`);
  for (const id of ["#job-n", "#job-chunks"]) $(id).addEventListener("input", (e) => setFieldError(e.target, ""));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await showLimits(); // the inputs' max attributes come from GET /kinds
    clearFormErrors(form);
    showAlert(errorBox, "");
    const n = readInt($("#job-n"), "n");
    const chunks = readInt($("#job-chunks"), "Chunks");
    if (n.error) setFieldError($("#job-n"), n.error);
    if (chunks.error) setFieldError($("#job-chunks"), chunks.error);
    if (n.error || chunks.error) {
      (n.error ? $("#job-n") : $("#job-chunks")).focus();
      return;
    }
    setBusy(button, true, "Submitting…");
    try {
      const accepted = await api("/jobs", { method: "POST", body: { n: n.value, chunks: chunks.value, kind: $("#job-kind").value } });
      state.mine.add(accepted.job_id);
      toast(`Job ${shortId(accepted.job_id)} submitted.`, { kind: "ok" });
      state.offset = 0;
      if (state.status && state.status !== "pending" && state.status !== "running") {
        state.status = "";
        $("#status-filter").value = "";
      }
      await loadJobs();
      refreshStatsSoon();
    } catch (error) {
      if (handleAuthError(error)) return;
      if (error.status === 422 && showFieldErrors(form, error.fieldErrors)) return;
      showAlert(errorBox, error.message);
    } finally {
      setBusy(button, false);
    }
  });
}

// ---- tokens ------------------------------------------------------------------------------------

function curlExample(token) {
  return [
    `curl -X POST ${window.location.origin}/jobs \\`,
    `  -H "Authorization: Bearer ${token || "$RAY_JOBS_TOKEN"}" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '{"n": 1000000, "chunks": 8, "kind": "range_sum"}'`,
  ].join("\n");
}

function renderCurl() {
  $("#token-curl").textContent = curlExample(state.lastToken);
}

function tokenItem(token) {
  const revoke = el("button", { type: "button", class: "btn btn-danger btn-sm", "aria-label": `Revoke token ${token.name}` }, "Revoke");
  revoke.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: "Revoke this token?",
      message: `Scripts using “${token.name}” will get 401 from now on. This can't be undone.`,
      confirmLabel: "Revoke token",
      cancelLabel: "Keep it",
      danger: true,
    });
    if (!ok) return;
    revoke.disabled = true;
    try {
      await api(`/me/tokens/${encodeURIComponent(token.id)}`, { method: "DELETE" });
      toast(`Token “${token.name}” revoked.`, { kind: "ok" });
      if (state.lastTokenId === token.id) {
        state.lastToken = null;
        $("#token-new").hidden = true;
        renderCurl();
      }
      loadTokens();
    } catch (error) {
      if (handleAuthError(error)) return;
      revoke.disabled = false;
      toast(error.message, { kind: "error" });
    }
  });
  const used = token.last_used_at ? `last used ${formatFullTime(token.last_used_at)}` : "never used";
  return el("li", { "data-token-id": token.id },
    el("div", {},
      el("div", { class: "token-name", text: token.name }),
      el("div", { class: "token-meta", text: `Created ${formatFullTime(token.created_at)} · ${used}` })),
    revoke);
}

async function loadTokens() {
  const list = $("#token-list");
  try {
    const tokens = await api("/me/tokens");
    list.replaceChildren(...(tokens.length ? tokens.map(tokenItem) : [el("li", { class: "empty", text: "No tokens yet." })]));
  } catch (error) {
    if (handleAuthError(error)) return;
    list.replaceChildren(el("li", { class: "empty", text: `Couldn't load tokens: ${error.message}` }));
  }
}

function setupTokens() {
  const form = $("#token-form");
  const name = $("#token-name");
  const button = $("#token-create");
  const box = $("#token-new");
  box.append(copyButton(() => $("#token-new-value").textContent, { label: "Copy", small: false, describedBy: "token-new-label" }));
  $("#token-curl-box").append(copyButton(() => $("#token-curl").textContent, { describedBy: "curl-label" }));
  name.addEventListener("input", () => setFieldError(name, ""));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) {
      setFieldError(name, "Give the token a name, like “laptop”.");
      name.focus();
      return;
    }
    setBusy(button, true, "Creating…");
    try {
      const created = await api("/me/tokens", { method: "POST", body: { name: value } });
      state.lastToken = created.token;
      state.lastTokenId = created.id;
      $("#token-new-value").textContent = created.token;
      box.hidden = false;
      name.value = "";
      renderCurl();
      toast(`Token “${created.name}” created. Copy it now — it won't be shown again.`, { kind: "ok" });
      await loadTokens();
    } catch (error) {
      if (handleAuthError(error)) return;
      if (error.status === 422 && showFieldErrors(form, error.fieldErrors)) return;
      setFieldError(name, error.message);
    } finally {
      setBusy(button, false);
    }
  });
  renderCurl();
}

// ---- start -------------------------------------------------------------------------------------

async function main() {
  const user = await initLayout({ active: "dashboard", wide: true });
  if (!user) {
    const problem = signInProblem();
    if (!problem) return toLogin();
    $("#dash-loading").textContent = `Couldn't check your sign-in: ${problem.message} Reload the page to try again.`;
    return;
  }
  $("#dash-email").textContent = user.email || "";
  $("#dash-loading").remove();
  $("#dash").hidden = false;

  setupSubmit();
  setupTokens();
  $("#status-filter").addEventListener("change", (event) => {
    state.status = event.target.value;
    state.offset = 0;
    loadJobs();
  });
  $("#jobs-refresh").addEventListener("click", () => { loadJobs(); loadStats(); });
  $("#page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadJobs(); });
  $("#page-next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadJobs(); });
  window.addEventListener("pagehide", stopLive);

  await Promise.all([loadStats(), loadTokens(), loadJobs()]);
  startLive();
}

main();
