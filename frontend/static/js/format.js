// Formatting shared by every page: exact integers, durations, times, percentages.

/** An integer (number, BigInt or digit string) with thousands separators, exactly. */
export function formatInt(value) {
  if (value === null || value === undefined || value === "") return "—";
  try {
    if (typeof value === "bigint") return value.toLocaleString("en-US");
    if (typeof value === "number") {
      return Number.isInteger(value) ? BigInt(value).toLocaleString("en-US") : value.toLocaleString("en-US");
    }
    if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value).toLocaleString("en-US");
  } catch {
    /* fall through */
  }
  return String(value);
}

export function formatNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "—";
  const value = Number(ms);
  if (value < 10 && !Number.isInteger(value)) return `${value.toFixed(1)} ms`;
  if (value < 1000) return `${Math.round(value).toLocaleString("en-US")} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(value / 60_000);
  const seconds = Math.round((value % 60_000) / 1000);
  return `${minutes} min ${seconds} s`;
}

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const FULL_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** Milliseconds since the epoch, keeping the microseconds an ISO time may carry. */
export function preciseMs(iso) {
  if (!iso) return null;
  const fraction = /\.(\d+)/.exec(iso);
  const whole = Date.parse(fraction ? iso.replace(fraction[0], "") : iso);
  return fraction ? whole + Number(`0.${fraction[1]}`) * 1000 : whole;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : TIME_FORMAT.format(date);
}

export function formatFullTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : FULL_FORMAT.format(date);
}

/** Whole percent; never shows 100 % before the job is actually complete. */
export function percentOf(job) {
  if (!job) return 0;
  if (job.status === "completed") return 100;
  const value = Math.floor((Number(job.progress) || 0) * 100);
  return Math.max(0, Math.min(99, value));
}

export function chunksText(job) {
  return `${formatInt(job.completed_chunks ?? 0)}/${formatInt(job.total_chunks ?? 0)} chunks`;
}

export const shortId = (id) => (id ? String(id).slice(0, 8) : "—");

export const KIND_LABELS = {
  range_sum: "Sum 1..n",
  prime_count: "Primes ≤ n",
  mandelbrot: "Mandelbrot image",
  word_count: "Word count",
  thumbnails: "Thumbnails",
};
export const kindLabel = (kind) => KIND_LABELS[kind] ?? kind;

/** A byte count in binary units: "512 B", "1.5 KiB", "64 MiB". */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(Number(bytes))) return "—";
  let value = Number(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 || Number.isInteger(value) ? 0 : 1;
  return `${value.toLocaleString("en-US", { maximumFractionDigits: digits })} ${units[unit]}`;
}

export const isInteger = (value) => typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
export const isScalar = (value) => value === null || ["string", "number", "bigint", "boolean"].includes(typeof value);

/** One scalar as text: integers exact with separators, other numbers as they are, booleans as yes/no. */
export function formatScalar(value) {
  if (value === null || value === undefined) return "—";
  if (isInteger(value)) return formatInt(value);
  if (typeof value === "number") return value.toLocaleString("en-US", { maximumFractionDigits: 12 });
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** A job's result in a few words, for a table cell or a toast: the number, the file it wrote, or its first fields. */
export function resultSummary(result) {
  if (result === null || result === undefined) return "—";
  if (isScalar(result)) return formatScalar(result);
  if (Array.isArray(result)) return `${formatInt(result.length)} item${result.length === 1 ? "" : "s"}`;
  if (typeof result.artifact === "string") return result.artifact;
  const parts = Object.entries(result).filter(([, value]) => isScalar(value) && value !== null).slice(0, 2)
    .map(([key, value]) => `${key.replaceAll("_", " ")} ${formatScalar(value)}`);
  return parts.length ? parts.join(" · ") : "see the job";
}

/** A job's inputs in a few words: n for the range kinds, else "width 64 · height 48 · …". */
export function inputSummary(job) {
  if (job.n !== null && job.n !== undefined && (!job.params || Object.keys(job.params).length <= 1)) return formatInt(job.n);
  const params = job.params || {};
  const parts = Object.entries(params).filter(([, value]) => isScalar(value) && value !== null)
    .map(([key, value]) => (key.endsWith("upload_id") ? "a file" : `${key.replaceAll("_", " ")} ${formatScalar(value)}`));
  if (!parts.length) return formatInt(job.n);
  return parts.length > 3 ? `${parts.slice(0, 3).join(" · ")} …` : parts.join(" · ");
}
