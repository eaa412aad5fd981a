// The server's job kinds and limits (GET /kinds), the only source of every limit a page shows or
// checks. Pages mark the spots in their HTML and keep "…" there until the answer arrives:
//   <span data-limit="demo.max_n">…</span>        the value, formatted (a rate limit as "3 per hour")
//   <span data-limit="demo.rate_limit" data-unit="runs">…</span>           "3 runs per hour"
//   <input data-limit-max="jobs.max_n">           the input's max attribute (readInt() checks it);
//                                                 an untouched default above it is lowered to it

import { api } from "./api.js";
import { formatInt } from "./format.js";

let kinds = null;
let shown = null;

/** GET /kinds, asked once per page load: {kinds: [{name, description, timeout_seconds}], limits}. */
export function getKinds() {
  kinds ??= api("/kinds").catch((error) => {
    kinds = null; // a later call asks again
    throw error;
  });
  return kinds;
}

/** The value at a dotted path under `limits` ("demo.max_n"), or undefined. */
export const limitAt = (config, path) => path.split(".").reduce((node, key) => node?.[key], config.limits);

const RATE = /^(\d+)\s*(?:\/|per)\s*(\d+)?\s*(second|minute|hour|day|month|year)s?$/i;

/** A rate limit in the server's syntax ("3/hour", "3 per 2 hours") in words: "3 runs per hour". */
export function rateText(limit, unit = "") {
  return String(limit).split(/[;,]/).map((part) => {
    const match = RATE.exec(part.trim());
    if (!match) return part.trim();
    const [, amount, every, period] = match;
    const per = every && every !== "1" ? `every ${formatInt(every)} ${period.toLowerCase()}s` : `per ${period.toLowerCase()}`;
    return [formatInt(amount), unit, per].filter(Boolean).join(" ");
  }).join(", ");
}

/** Fill every marked spot under `root` from a GET /kinds answer. */
export function fillLimits(config, root = document) {
  for (const node of root.querySelectorAll("[data-limit]")) {
    const value = limitAt(config, node.dataset.limit);
    if (value === undefined) continue;
    node.textContent = typeof value === "string" ? rateText(value, node.dataset.unit) : formatInt(value);
  }
  for (const input of root.querySelectorAll("[data-limit-max]")) {
    const value = limitAt(config, input.dataset.limitMax);
    if (value === undefined) continue;
    input.max = String(value);
    if (input.value === input.defaultValue && Number(input.value) > value) input.value = String(value);
  }
}

/** Fill the page's marked spots once (initLayout starts it); resolves with GET /kinds, or null if
 *  the server could not say (the "…" stay, and forms leave the upper bounds to the server). */
export function showLimits() {
  shown ??= document.querySelector("[data-limit], [data-limit-max]")
    ? getKinds().then((config) => { fillLimits(config); return config; }, () => null)
    : Promise.resolve(null);
  return shown;
}

/** Replace a <select>'s options with the server's kinds, keeping the chosen one (without an answer
 *  from the server, the page's default option stays). Kinds `usable(kind)` refuses are listed disabled. */
export async function showKinds(select, label, { usable = () => true } = {}) {
  let config;
  try {
    config = await getKinds();
  } catch {
    return;
  }
  const chosen = select.value;
  select.replaceChildren(...config.kinds.map((kind) => {
    const option = new Option(label(kind), kind.name);
    option.disabled = !usable(kind);
    return option;
  }));
  if (config.kinds.some((kind) => kind.name === chosen && usable(kind))) select.value = chosen;
  else select.value = config.kinds.find(usable)?.name ?? "";
}

// ---- kinds with typed inputs -------------------------------------------------------------------

/** True when every kind in a GET /kinds answer describes its inputs (params_schema); an older
 *  server lists only names, and the pages keep their n/chunks forms. */
export const kindsHaveSchemas = (config) => Boolean(config?.kinds?.length) && config.kinds.every((kind) => kind.params_schema);

export const findKind = (config, name) => config?.kinds?.find((kind) => kind.name === name) ?? null;

/** The most chunks a job of `kind` may have: the kind's own max_chunks, else the server's. */
export function chunkLimit(config, kind) {
  const own = kind?.max_chunks;
  const server = limitAt(config, "jobs.max_chunks");
  if (own === null || own === undefined) return { max: server, own: false };
  return { max: server === undefined ? own : Math.min(own, server), own: own < (server ?? Infinity) };
}

/** True when the legacy body ({n, chunks, kind}) can name the kind: its params need n alone. */
export const takesN = (kind) => !kind?.params_schema || (Boolean(kind.params_schema.properties?.n)
  && (kind.params_schema.required || []).every((name) => name === "n"));

/** True when the home page's demo form can run the kind: open to demo jobs, and n is all it needs. */
export const demoCanRun = (kind) => kind?.demo !== false && takesN(kind);
