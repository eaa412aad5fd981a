// Small DOM toolkit and the shared components: element builder, icons, badge, progress bar,
// toast, confirm dialog, copy button, form errors. Text always goes in through textContent.

import { chunksText, formatInt, percentOf, shortId } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** el("a", {class: "x", href: "/", text: "Home"}, child, "text", ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// ---- icons (24x24 stroke paths) ---------------------------------------------------------------

const ICONS = {
  sun: ["M12 4V2M12 22v-2M4.9 4.9 3.5 3.5M20.5 20.5l-1.4-1.4M4 12H2M22 12h-2M4.9 19.1l-1.4 1.4M20.5 3.5l-1.4 1.4", "circle:12,12,4"],
  moon: ["M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"],
  menu: ["M4 6h16M4 12h16M4 18h16"],
  close: ["M6 6l12 12M18 6 6 18"],
  external: ["M14 4h6v6M20 4l-9 9M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5"],
  copy: ["M9 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1z", "M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1"],
  check: ["M4 12.5 9.5 18 20 6.5"],
  play: ["M7 4.5v15l12-7.5z"],
  refresh: ["M20 11a8 8 0 0 0-14.3-4.9L4 8", "M4 3v5h5", "M4 13a8 8 0 0 0 14.3 4.9L20 16", "M20 21v-5h-5"],
  back: ["M15 18l-6-6 6-6"],
  chevron: ["M6 9l6 6 6-6"],
  user: ["circle:12,8,4", "M4 21a8 8 0 0 1 16 0"],
  logout: ["M15 4h4a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-4", "M10 17l-5-5 5-5", "M5 12h11"],
  plus: ["M12 5v14M5 12h14"],
  stop: ["rect:6,6,12,12"],
};

export function icon(name, className = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (className) svg.setAttribute("class", className);
  for (const spec of ICONS[name] ?? []) {
    let shape;
    if (spec.startsWith("circle:")) {
      const [cx, cy, r] = spec.slice(7).split(",");
      shape = document.createElementNS(SVG_NS, "circle");
      shape.setAttribute("cx", cx); shape.setAttribute("cy", cy); shape.setAttribute("r", r);
    } else if (spec.startsWith("rect:")) {
      const [x, y, w, h] = spec.slice(5).split(",");
      shape = document.createElementNS(SVG_NS, "rect");
      shape.setAttribute("x", x); shape.setAttribute("y", y); shape.setAttribute("width", w); shape.setAttribute("height", h);
      shape.setAttribute("rx", "1.5");
    } else {
      shape = document.createElementNS(SVG_NS, "path");
      shape.setAttribute("d", spec);
    }
    svg.append(shape);
  }
  return svg;
}

// ---- badge -----------------------------------------------------------------------------------

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];

export function badge(status) {
  const node = el("span", { class: "badge" });
  setBadge(node, status);
  return node;
}

export function setBadge(node, status) {
  for (const s of STATUSES) node.classList.remove(`badge-${s}`);
  if (STATUSES.includes(status)) node.classList.add(`badge-${status}`);
  node.textContent = status || "unknown";
  node.dataset.status = status || "";
}

// ---- progress bar ----------------------------------------------------------------------------

/** A progressbar element for a job; update it with updateProgress(node, job). */
export function progressBar(label, { large = false } = {}) {
  const fill = el("div", { class: "progress-fill" });
  return el("div", {
    class: large ? "progress progress-lg" : "progress",
    role: "progressbar",
    "aria-label": label,
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": "0",
  }, fill);
}

export function updateProgress(bar, job) {
  const percent = percentOf(job);
  bar.setAttribute("aria-valuenow", String(percent));
  bar.setAttribute("aria-valuetext", `${percent}%, ${chunksText(job)}`);
  bar.dataset.state = job.status;
  const fill = bar.querySelector(".progress-fill");
  if (fill) fill.style.width = `${percent}%`;
}

// ---- toast -----------------------------------------------------------------------------------

function toastRegion() {
  let region = document.getElementById("toasts");
  if (!region) {
    region = el("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  return region;
}

export function toast(message, { kind = "info", timeout = 5000 } = {}) {
  const region = toastRegion();
  const close = el("button", { type: "button", "aria-label": "Dismiss notification", text: "×" });
  const node = el("div", { class: `toast toast-${kind}` }, el("p", { text: message }), close);
  const remove = () => node.remove();
  close.addEventListener("click", remove);
  region.append(node);
  if (timeout) setTimeout(remove, timeout);
  return node;
}

// ---- forms -----------------------------------------------------------------------------------

/** A whole number from a number input within its min and max attributes: { value } or { error } naming the field. */
export function readInt(input, name) {
  const raw = input.value.trim();
  if (!raw) return { error: `Enter ${name}.` };
  if (!/^\d+$/.test(raw)) return { error: `${name} must be a whole number.` };
  const value = Number(raw);
  const min = Number(input.min || 1);
  const max = input.max ? Number(input.max) : Infinity; // no max yet: the server checks it
  if (value < min || value > max) {
    return { error: max === Infinity ? `${name} must be at least ${formatInt(min)}.` : `${name} must be between ${formatInt(min)} and ${formatInt(max)}.` };
  }
  return { value };
}

// ---- dialog ----------------------------------------------------------------------------------

/** Ask before cancelling a job; resolves true when the user confirms. */
export function confirmCancelJob(jobId) {
  return confirmDialog({
    title: "Cancel this job?",
    message: `Job ${shortId(jobId)} stops now; chunks that already finished are discarded.`,
    confirmLabel: "Cancel job",
    cancelLabel: "Keep running",
    danger: true,
  });
}


/** A modal confirmation; resolves true when confirmed. Uses the native <dialog> (focus trap, Esc). */
export function confirmDialog({ title, message, confirmLabel = "Confirm", cancelLabel = "Keep", danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2, 8)}`;
    const descId = `${titleId}-desc`;
    const cancel = el("button", { type: "button", class: "btn btn-ghost", text: cancelLabel });
    const confirm = el("button", { type: "button", class: danger ? "btn btn-danger-solid" : "btn btn-primary", text: confirmLabel });
    const dialog = el("dialog", { class: "dialog", "aria-labelledby": titleId, "aria-describedby": descId },
      el("h2", { id: titleId, text: title }),
      el("p", { id: descId, class: "muted", text: message }),
      el("div", { class: "dialog-actions" }, cancel, confirm));
    let answer = false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => { answer = true; dialog.close(); });
    dialog.addEventListener("close", () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// ---- clipboard -------------------------------------------------------------------------------

export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const area = el("textarea", { class: "sr-only", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A "Copy" button that copies getText() and says "Copied!" for a moment. */
export function copyButton(getText, { label = "Copy", small = true, describedBy = null } = {}) {
  const text = el("span", { text: label });
  const button = el("button", {
    type: "button",
    class: `btn btn-secondary copy-btn${small ? " btn-sm" : ""}`,
    "aria-describedby": describedBy,
  }, icon("copy"), text);
  let timer = null;
  button.addEventListener("click", async () => {
    const ok = await copyText(getText());
    text.textContent = ok ? "Copied!" : "Press Ctrl+C";
    button.replaceChild(icon(ok ? "check" : "copy"), button.firstChild);
    clearTimeout(timer);
    timer = setTimeout(() => {
      text.textContent = label;
      button.replaceChild(icon("copy"), button.firstChild);
    }, 2000);
  });
  return button;
}

// ---- forms -----------------------------------------------------------------------------------

export function setFieldError(input, message) {
  const error = document.getElementById(`${input.id}-error`);
  if (message) {
    input.setAttribute("aria-invalid", "true");
    if (error) error.textContent = message;
  } else {
    input.removeAttribute("aria-invalid");
    if (error) error.textContent = "";
  }
}

export function clearFormErrors(form) {
  for (const input of form.querySelectorAll("input, select, textarea")) setFieldError(input, "");
}

/** Put server field errors ({field: message}) next to the inputs named like the fields.
 *  Returns how many were placed. */
export function showFieldErrors(form, fieldErrors) {
  let placed = 0;
  let first = null;
  for (const [field, message] of Object.entries(fieldErrors || {})) {
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (!input) continue;
    setFieldError(input, message.charAt(0).toUpperCase() + message.slice(1));
    placed += 1;
    first = first || input;
  }
  if (first) first.focus();
  return placed;
}

export function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }), busyLabel || button.dataset.label);
  } else {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (button.dataset.label) button.textContent = button.dataset.label;
  }
}

export function showAlert(node, message, kind = "error") {
  node.className = `alert alert-${kind}`;
  node.textContent = message;
  node.hidden = !message;
}

/** A same-origin path to go to after sign-in, or the fallback. */
export function safeNext(value, fallback = "/dashboard") {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return fallback;
  return value;
}
