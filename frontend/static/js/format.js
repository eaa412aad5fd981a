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
};
export const kindLabel = (kind) => KIND_LABELS[kind] ?? kind;
