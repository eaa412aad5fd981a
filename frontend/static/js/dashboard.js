// Dashboard: submit jobs, stats, API tokens, and the job history with live rows over one SSE stream.

import { api, ApiError, followMyJobs, isTerminal } from "./api.js";
import {
  chunksText, formatDuration, formatFullTime, formatInt, inputSummary, kindLabel, percentOf, resultSummary, shortId,
} from "./format.js";
import { paramFields } from "./kindform.js";
import { initLayout, signInProblem } from "./layout.js";
import { chunkLimit, findKind, getKinds, kindsHaveSchemas, showKinds, showLimits } from "./limits.js";
import { priorityOf, QUEUE_REFRESH_MS, setPriorityTag, setQueueNote } from "./schedule.js";
import {
  $, $$, badge, clearFormErrors, confirmCancelJob, confirmDialog, copyButton, el, progressBar, readInt, setBadge, setBusy,
  setFieldError, showAlert, showFieldErrors, toast, updateProgress,
} from "./ui.js";

const PAGE_SIZE = 10;
const POLL_MS = 2000; // only when the live stream is refused
const state = { offset: 0, total: 0, status: "", stopStream: null, pollTimer: null, mine: new Set(), lastToken: null,
  loads: 0, finals: new Map(), queueTimer: null };

/** A terminal state is final: a list page read before a job ended must not draw it as running again. */
function newest(job) {
  if (isTerminal(job.status)) {
    state.finals.set(job.job_id, job);
    return job;
  }
  return state.finals.get(job.job_id) || job;
}

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
    el("td", { "data-label": "Status", "data-cell": "status" },
      el("div", { class: "status-cell" },
        badge(job.status),
        el("span", { class: "chip priority-tag", hidden: true }),
        el("span", { class: "queue-note", hidden: true }))),
    el("td", { "data-label": "Progress" }, el("div", { class: "mini-progress" }, bar, el("span", { "data-cell": "chunks" }))),
    el("td", { "data-label": "Input", class: "num input-cell", text: inputSummary(job), title: inputSummary(job) }),
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
  row.dataset.priority = priorityOf(job);
  setBadge(cell("status").querySelector(".badge"), job.status);
  setPriorityTag(cell("status").querySelector(".priority-tag"), job);
  setQueueNote(cell("status").querySelector(".queue-note"), job);
  updateProgress(row.querySelector('[role="progressbar"]'), job);
  cell("chunks").textContent = `${percentOf(job)}% · ${chunksText(job).replace(" chunks", "")}`;
  cell("created").replaceChildren(timeCell(job.created_at));
  cell("started").replaceChildren(timeCell(job.started_at));
  cell("completed").replaceChildren(timeCell(job.completed_at));
  cell("result").textContent = job.status === "completed" ? resultSummary(job.result) : "—";
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
function applyJob(update) {
  const job = newest(update);
  const row = rowOf(job.job_id);
  if (!row) {
    // a job this page does not show yet (another tab, the API) that belongs on it
    if (state.offset === 0 && (!state.status || state.status === job.status)) reloadSoon();
    return;
  }
  const wasTerminal = isTerminal(row.dataset.status);
  fillRow(row, job);
  followQueueSoon();
  if (!wasTerminal && isTerminal(job.status)) {
    $("#jobs-live").textContent = `Job ${shortId(job.job_id)} ${job.status}.`;
    if (state.mine.has(job.job_id) && job.status === "completed") {
      toast(`Job ${shortId(job.job_id)} completed: ${resultSummary(job.result)}`, { kind: "ok" });
    } else if (state.mine.has(job.job_id) && job.status === "failed") {
      toast(`Job ${shortId(job.job_id)} failed: ${job.detail || "no reason given"}`, { kind: "error" });
    }
    refreshStatsSoon();
  }
}

/** Pending rows' queue places: the runner rewrites them about once a second, but the stream only speaks
 *  when a job's status or finished chunks change, so the pending jobs are re-read while rows show any. */
function followQueueSoon() {
  if (state.queueTimer || !document.querySelector('#jobs-body tr[data-status="pending"]')) return;
  state.queueTimer = setTimeout(refreshQueued, QUEUE_REFRESH_MS);
}

async function refreshQueued() {
  state.queueTimer = null;
  if (!document.hidden && document.querySelector('#jobs-body tr[data-status="pending"]')) {
    try {
      const page = await api("/jobs?status=pending&limit=100");
      for (const job of page.items) {
        // only rows still pending: the stream may have told a start since this read was answered
        if (job.status === "pending" && rowOf(job.job_id)?.dataset.status === "pending") applyJob(job);
      }
    } catch (error) {
      if (handleAuthError(error)) return;
    }
  }
  followQueueSoon();
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
  clearTimeout(state.queueTimer);
  state.queueTimer = null;
}

async function loadJobs() {
  const body = $("#jobs-body");
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset) });
  if (state.status) params.set("status", state.status);
  const load = ++state.loads; // only the latest load may draw the table
  body.setAttribute("aria-busy", "true");
  try {
    const page = await api(`/jobs?${params}`);
    if (load !== state.loads) return; // a newer filter or page was asked for while this one was on its way
    if (!page.items.length && state.offset > 0 && page.total > 0) {
      state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      return loadJobs();
    }
    state.total = page.total;
    if (!page.items.length) {
      const message = state.status ? `No ${state.status} jobs.` : "No jobs yet. Submit one above and watch it run.";
      body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "10", text: message })));
    } else {
      body.replaceChildren(...page.items.map((job) => jobRow(newest(job))));
      followQueueSoon();
    }
    renderPager();
  } catch (error) {
    if (handleAuthError(error) || load !== state.loads) return;
    body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "10", text: `Couldn't load your jobs: ${error.message}` })));
  } finally {
    if (load === state.loads) body.removeAttribute("aria-busy");
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
// Built from GET /kinds: the kind <select>, then that kind's fields (kindform.js) and Chunks. A server
// that does not describe its kinds' inputs keeps the page's n/chunks form and the legacy body.

const form = {
  config: null, // GET /kinds, once it answers with params schemas
  fields: [], // paramFields() of the chosen kind
  values: new Map(), // what the user typed per field name, kept across kind changes
  chunksTouched: false,
  ready: null, // resolves once the form matches the server's kinds
};

function resourcesText(kind) {
  const r = kind.resources || {};
  const parts = [`${formatInt(r.num_cpus ?? 1)} CPU${Number(r.num_cpus ?? 1) === 1 ? "" : "s"}`];
  if (Number(r.num_gpus)) parts.push(`${formatInt(r.num_gpus)} GPU${Number(r.num_gpus) === 1 ? "" : "s"}`);
  for (const [name, amount] of Object.entries(r.custom || {})) parts.push(`${formatInt(amount)} ${name}`);
  let text = `Each chunk uses ${parts.join(", ")}.`;
  const retry = kind.retry;
  if (retry && retry.max_attempts > 1 && retry.transient?.length) {
    text += ` ${retry.transient.join(", ")} errors are retried, up to ${formatInt(retry.max_attempts)} attempts.`;
  }
  return text;
}

/** Show the chosen kind's fields (keeping what the user typed in fields of the same name). */
function buildKindFields() {
  const kind = findKind(form.config, $("#job-kind").value) || form.config.kinds[0];
  const container = $("#job-fields");
  const chunksField = $("#job-chunks-field");
  for (const node of [...container.children]) if (node !== chunksField) node.remove();
  form.fields = paramFields(kind, {
    prefix: "job",
    config: form.config,
    values: form.values,
    onError: setFieldError,
    onInput: (name, value) => form.values.set(name, value),
  });
  chunksField.before(...form.fields.map((field) => field.node));

  const hint = $("#job-kind-hint");
  hint.textContent = `${kind.description ? `${kind.description.replace(/\.?$/, ".")} ` : ""}${resourcesText(kind)}`;
  $("#job-n-chip").hidden = !form.fields.some((field) => field.name === "n");

  // Chunks: the kind's default (until the user sets one) and its own maximum if it has one.
  const chunks = $("#job-chunks");
  const { max, own } = chunkLimit(form.config, kind);
  const maxSpan = $("#job-chunks-max");
  if (own) {
    chunks.removeAttribute("data-limit-max");
    maxSpan.removeAttribute("data-limit");
  } else {
    chunks.setAttribute("data-limit-max", "jobs.max_chunks");
    maxSpan.setAttribute("data-limit", "jobs.max_chunks");
  }
  if (max !== undefined) {
    chunks.max = String(max);
    maxSpan.textContent = formatInt(max);
  }
  if (!form.chunksTouched && kind.default_chunks) chunks.value = String(kind.default_chunks);
  setFieldError(chunks, "");
}

async function prepareForm() {
  let config;
  try {
    config = await getKinds();
  } catch {
    return; // the server did not answer: the page's own form stays, the server checks what is sent
  }
  if (!kindsHaveSchemas(config)) return;
  form.config = config;
  await showLimits(); // the marked spots first, so the kind's own limits win
  for (const input of $$("#job-fields [data-param]")) {
    if (input.matches("input, select") && !form.values.has(input.dataset.param)) form.values.set(input.dataset.param, input.value);
  }
  buildKindFields();
}

/** Put a 422's field errors next to their fields (`params.width` or a bare `width`); the rest in words. */
function placeFieldErrors(formNode, fieldErrors) {
  const placed = {};
  for (const [field, message] of Object.entries(fieldErrors || {})) {
    const name = formNode.querySelector(`[name="${CSS.escape(field)}"]`) ? field : `params.${field}`;
    if (formNode.querySelector(`[name="${CSS.escape(name)}"]`)) placed[name] = message;
  }
  return showFieldErrors(formNode, placed) === Object.keys(fieldErrors || {}).length;
}

/** The body for POST /jobs, or null after showing what is wrong next to the fields. */
function readForm() {
  const problems = [];
  const chunksInput = $("#job-chunks");
  if (!form.config) {
    const n = readInt($("#job-n"), "n");
    const chunks = readInt(chunksInput, "Chunks");
    if (n.error) problems.push([$("#job-n"), n.error]);
    if (chunks.error) problems.push([chunksInput, chunks.error]);
    for (const [input, message] of problems) setFieldError(input, message);
    if (problems.length) {
      problems[0][0].focus();
      return null;
    }
    return { n: n.value, chunks: chunks.value, kind: $("#job-kind").value, priority: $("#job-priority").value };
  }
  const params = {};
  for (const field of form.fields) {
    const answer = field.read();
    if (answer.error) problems.push([field.input, answer.error]);
    else if (!answer.omit) params[field.name] = answer.value;
  }
  const chunks = readInt(chunksInput, "Chunks");
  if (chunks.error) problems.push([chunksInput, chunks.error]);
  for (const [input, message] of problems) setFieldError(input, message);
  if (problems.length) {
    problems[0][0].focus();
    return null;
  }
  return { kind: $("#job-kind").value, params, chunks: chunks.value, priority: $("#job-priority").value };
}

function setupSubmit() {
  const formNode = $("#job-form");
  const button = $("#job-submit");
  const errorBox = $("#job-form-error");
  showKinds($("#job-kind"), (kind) => `${kind.name} — ${kind.description}`);
  form.ready = prepareForm();
  $("#job-kind").addEventListener("change", () => {
    setFieldError($("#job-kind"), "");
    showAlert(errorBox, "");
    if (form.config) buildKindFields();
  });
  $("#job-chunks").addEventListener("input", (e) => { form.chunksTouched = true; setFieldError(e.target, ""); });
  $("#job-n").addEventListener("input", (e) => { form.values.set("n", e.target.value); setFieldError(e.target, ""); });
  $("#job-priority").addEventListener("change", (e) => setFieldError(e.target, ""));
  formNode.addEventListener("submit", async (event) => {
    event.preventDefault();
    await showLimits(); // the inputs' max attributes come from GET /kinds
    await form.ready;
    clearFormErrors(formNode);
    showAlert(errorBox, "");
    const body = readForm();
    if (!body) return;
    setBusy(button, true, "Submitting…");
    try {
      const accepted = await api("/jobs", { method: "POST", body });
      state.mine.add(accepted.job_id);
      const priority = body.priority && body.priority !== "normal" ? ` with ${body.priority} priority` : "";
      toast(`Job ${shortId(accepted.job_id)} submitted${priority}.`, { kind: "ok" });
      state.offset = 0;
      if (state.status && state.status !== "pending" && state.status !== "running") {
        state.status = "";
        $("#status-filter").value = "";
      }
      await loadJobs();
      refreshStatsSoon();
    } catch (error) {
      if (handleAuthError(error)) return;
      if (error.status === 422 && placeFieldErrors(formNode, error.fieldErrors)) return;
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
