// HTTP helpers for the pages: same-origin fetch with the session cookie, the CSRF header on writes,
// exact big integers in JSON, and errors turned into sentences (never raw JSON).

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const CSRF_COOKIE = "csrf_token";

export class ApiError extends Error {
  constructor(message, { status = 0, detail = null, fieldErrors = {}, retryAfter = null, limit = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.fieldErrors = fieldErrors; // {field: message} from a 422
    this.retryAfter = retryAfter; // seconds, from Retry-After on 429/503
    this.limit = limit; // how many requests the limit allows, from X-RateLimit-Limit
  }
}

export function getCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function hasSessionHint() {
  return Boolean(getCookie(CSRF_COOKIE));
}

// ---- exact JSON ------------------------------------------------------------------------------

const INTEGER = /^-?\d+$/;

/** JSON.parse that keeps integers beyond 2^53 exact, as BigInt. */
export function parseJson(text) {
  // The reviver's context.source (Chrome 114, Firefox 135, Safari 18.4) has the digits; an older browser gets plain JSON.parse, big numbers rounded.
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && INTEGER.test(context?.source ?? "")
      ? BigInt(context.source)
      : value,
  );
}

// ---- errors in words -------------------------------------------------------------------------

const NETWORK_MESSAGE = "Can't reach the server. Check your connection and try again.";

function messageFor(status, data) {
  const detail = data && typeof data.detail === "string" ? data.detail : null;
  if (status === 422 && data && Array.isArray(data.errors) && data.errors.length) {
    return data.errors.map((e) => `${labelOf(e.field)}: ${e.message}`).join(" ");
  }
  if (detail) return detail;
  if (status === 401) return "You are not signed in.";
  if (status === 403) return "You don't have access to this.";
  if (status === 404) return "Not found.";
  if (status === 429) return "Too many requests. Please wait a moment and try again.";
  if (status >= 500) return `The server ran into a problem (HTTP ${status}). Please try again shortly.`;
  return `The request failed (HTTP ${status}).`;
}

function labelOf(field) {
  const label = { n: "n", chunks: "Chunks", kind: "Kind", email: "Email", password: "Password", name: "Name", body: "Request" }[field];
  return label ?? String(field ?? "").replace(/^params\./, "");
}

function errorFrom(response, data) {
  return errorOf(response.status, data, (name) => response.headers.get(name));
}

/** An ApiError from a status, the parsed body and a header getter (fetch and XMLHttpRequest alike). */
function errorOf(status, data, header) {
  const fieldErrors = {};
  if (data && Array.isArray(data.errors)) {
    for (const e of data.errors) if (e && e.field && !(e.field in fieldErrors)) fieldErrors[e.field] = e.message;
  }
  let retryAfter = Number.parseInt(header("Retry-After") ?? "", 10);
  if (!Number.isFinite(retryAfter) && data && Number.isFinite(Number(data.retry_after))) retryAfter = Number(data.retry_after);
  return new ApiError(messageFor(status, data), {
    status,
    detail: data && typeof data.detail === "string" ? data.detail : null,
    fieldErrors,
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : null,
    limit: header("X-RateLimit-Limit"),
  });
}

function parseBody(text) {
  if (!text) return null;
  try {
    return parseJson(text);
  } catch {
    return null;
  }
}

/** Call the API. Resolves with the parsed body (null for 204); rejects with ApiError. */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) {
    const csrf = getCookie(CSRF_COOKIE);
    if (csrf) sent["X-CSRF-Token"] = csrf;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(NETWORK_MESSAGE, { status: 0 });
  }
  const data = parseBody(await response.text());
  if (!response.ok) throw errorFrom(response, data);
  return data;
}

/**
 * Send a file as multipart/form-data (one part, `field`) with XMLHttpRequest, which reports upload
 * progress (fetch does not): onProgress(loaded, total) as the bytes go out. Same session cookie and
 * CSRF header as api(). Resolves with the parsed answer; rejects with ApiError (errors in words).
 * Returns {promise, abort}.
 */
export function uploadFile(path, file, { field = "file", onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    const csrf = getCookie(CSRF_COOKIE);
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      const data = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(errorOf(xhr.status, data, (name) => xhr.getResponseHeader(name)));
    });
    xhr.addEventListener("error", () => reject(new ApiError(NETWORK_MESSAGE, { status: 0 })));
    xhr.addEventListener("abort", () => reject(new ApiError("The upload was stopped.", { status: 0 })));
    const form = new FormData();
    form.append(field, file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// ---- live job updates ------------------------------------------------------------------------

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const isTerminal = (status) => TERMINAL.has(status);

/**
 * Follow a job: Server-Sent Events from `${base}/events`, falling back to polling `${base}` if the
 * stream breaks. Calls onUpdate(job) for each change and once more at the end. Returns stop().
 * With onChunks, the stream also carries the newly finished chunks (`?chunks=true`): onChunks(chunks)
 * gets only those; onResync() is called when the caller should re-read all chunks (with the first
 * record of every connection, when the server says some were missed, and per poll while polling).
 */
export function followJob(base, onUpdate, { pollMs = 1000, onChunks = null, onResync = null } = {}) {
  let stopped = false;
  let source = null;
  let timer = null;
  let fresh = true; // the next record is the first of a connection

  const finish = () => {
    stopped = true;
    if (source) source.close();
    if (timer) clearTimeout(timer);
  };
  const deliver = (job) => {
    if (stopped) return;
    onUpdate(job);
    if (fresh && onResync && !isTerminal(job.status)) onResync();
    fresh = false;
    if (isTerminal(job.status)) finish();
  };
  const poll = async () => {
    if (stopped) return;
    fresh = true;
    try {
      deliver(await api(base));
    } catch (error) {
      if (error.status === 404 || error.status === 401) {
        onUpdate(null, error);
        finish();
        return;
      }
    }
    if (!stopped) timer = setTimeout(poll, pollMs);
  };
  const handle = (event) => {
    try {
      deliver(parseJson(event.data));
    } catch {
      /* a malformed event: the next one or the poll fallback corrects it */
    }
  };

  if ("EventSource" in window) {
    source = new EventSource(onChunks ? `${base}/events?chunks=true` : `${base}/events`);
    source.addEventListener("open", () => { fresh = true; });
    source.addEventListener("progress", handle);
    source.addEventListener("done", handle);
    if (onChunks) {
      source.addEventListener("chunks", (event) => {
        try {
          if (!stopped) onChunks(parseJson(event.data).chunks || []);
        } catch {
          if (onResync) onResync();
        }
      });
      source.addEventListener("resync", () => { if (!stopped && onResync) onResync(); });
    }
    source.addEventListener("error", (event) => {
      // Either an `event: error` from the server or a broken connection: read the job over HTTP.
      if (stopped) return;
      if (event && event.data) handle(event);
      source.close();
      source = null;
      poll();
    });
  } else {
    poll();
  }
  return finish;
}

/**
 * Follow every job of the signed-in user over one stream (`/jobs/events`, with the session cookie):
 * onJob(job) per change (the full record; terminal ones are final), onRemoved({job_id}) when a
 * record is gone, onResync() on every (re)connection and whenever updates may have been missed
 * (re-read what is shown). The browser reconnects by itself after a network error; if the stream is
 * refused (signed out, service down) or EventSource is missing, onDown() is called once. Returns stop().
 */
export function followMyJobs({ onJob, onRemoved = () => {}, onResync = () => {}, onDown = () => {} }) {
  if (!("EventSource" in window)) {
    onDown();
    return () => {};
  }
  let stopped = false;
  const source = new EventSource("/jobs/events", { withCredentials: true });
  const on = (name, callback) => source.addEventListener(name, (event) => {
    if (stopped) return;
    let data;
    try {
      data = parseJson(event.data);
    } catch {
      onResync(); // a malformed event: re-read instead
      return;
    }
    callback(data);
  });
  on("progress", onJob);
  on("done", onJob);
  on("removed", onRemoved);
  on("ready", () => onResync());
  on("resync", () => onResync());
  source.addEventListener("error", () => {
    if (!stopped && source.readyState === EventSource.CLOSED) {
      stopped = true;
      onDown();
    }
  });
  return () => {
    stopped = true;
    source.close();
  };
}
