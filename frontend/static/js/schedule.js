// Scheduling, as the pages show it: a job's priority tag and its place in the queue (dashboard rows,
// the job page), and the "Queued chunks" cluster card (GET /monitoring/cluster's `scheduler`).

import { formatInt } from "./format.js";

export const PRIORITIES = ["high", "normal", "low"];

/** How often a page re-reads its queued jobs: the runner writes queue places about once a second, and
 *  the live streams only speak when a job's status or finished chunks change. */
export const QUEUE_REFRESH_MS = 2000;

export const priorityOf = (job) => (PRIORITIES.includes(job?.priority) ? job.priority : "normal");

/** Draw `job`'s priority on a small tag (a span.chip.priority-tag): shown for high and low, hidden for
 *  normal (it stays quiet); true when it shows. */
export function setPriorityTag(node, job) {
  const priority = priorityOf(job);
  for (const name of PRIORITIES) node.classList.remove(`priority-${name}`);
  node.classList.add(`priority-${priority}`);
  node.dataset.priority = priority;
  node.textContent = `${priority} priority`;
  node.hidden = priority === "normal";
  return !node.hidden;
}

/** Whether the job waits in the scheduler's queue with a known place. */
export const isQueued = (job) => job?.status === "pending" && Number.isInteger(job.queue_position);

/** "Queued · #3" for a job waiting in the queue, else "". */
export const queueText = (job) => (isQueued(job) ? `Queued · #${formatInt(job.queue_position)}` : "");

/** Show or hide a queue note (an element with class queue-note) for `job`. */
export function setQueueNote(node, job) {
  const text = queueText(job);
  node.textContent = text;
  node.hidden = !text;
  node.title = text && job.detail ? job.detail : "";
}

// ---- the "Queued chunks" cluster card ------------------------------------------------------------

/**
 * Fill the card from `scheduler` (null: the runner did not answer). `card` holds elements marked
 * data-queue="total|high|normal|low|slots|lane" and an optional progressbar [data-queue="meter"].
 */
export function renderQueueCard(card, scheduler) {
  const part = (name) => card.querySelector(`[data-queue="${name}"]`);
  const meter = part("meter");
  card.dataset.state = scheduler ? scheduler.policy : "unavailable";
  if (!scheduler) {
    part("total").textContent = "—";
    for (const name of PRIORITIES) part(name).textContent = "—";
    part("slots").textContent = "Scheduler figures unavailable: the job runner is not answering.";
    part("lane").hidden = true;
    if (meter) meter.hidden = true;
    return;
  }
  const queued = scheduler.queued_chunks || {};
  const counts = PRIORITIES.map((name) => Number(queued[name]) || 0);
  part("total").textContent = formatInt(counts.reduce((sum, count) => sum + count, 0));
  PRIORITIES.forEach((name, i) => { part(name).textContent = formatInt(counts[i]); });

  const inflight = Number(scheduler.inflight_chunks) || 0;
  const max = scheduler.max_inflight_chunks;
  const bounded = Number.isInteger(max) && max > 0;
  part("slots").textContent = bounded
    ? `in flight: ${formatInt(inflight)} of ${formatInt(max)} slots`
    : `in flight: ${formatInt(inflight)}, no limit (${scheduler.policy || "fifo"})`;
  const lane = Number(scheduler.interactive_inflight) || 0;
  part("lane").textContent = `+ ${formatInt(lane)} on the interactive lane`;
  part("lane").hidden = lane === 0;
  if (meter) {
    meter.hidden = !bounded;
    if (bounded) {
      const share = Math.min(100, Math.round((inflight / max) * 100));
      meter.setAttribute("aria-valuenow", String(share));
      meter.setAttribute("aria-valuetext", `${formatInt(inflight)} of ${formatInt(max)} chunk slots in use`);
      meter.querySelector(".progress-fill").style.width = `${share}%`;
    }
  }
}
