// Form fields built from a job kind's params JSON schema (GET /kinds): integer/number -> number
// input (min/max/default from the schema), string -> text, boolean -> checkbox, enum -> select,
// upload fields (the kind's upload_fields) -> a file input that uploads at once (POST /uploads)
// with a progress bar. The only client-side checks are the schema's own bounds; the server checks
// the rest and its 422 field errors land next to the fields (their inputs are named params.<field>).

import { uploadFile } from "./api.js";
import { formatBytes, formatInt, formatScalar } from "./format.js";
import { limitAt } from "./limits.js";
import { el } from "./ui.js";

/** The schema of one property with $ref, allOf [x] and Optional (anyOf [x, null]) resolved. */
export function resolveProperty(prop, root) {
  let schema = { ...prop };
  let nullable = false;
  for (let depth = 0; depth < 8; depth += 1) {
    if (schema.$ref) {
      const target = schema.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node?.[key], root);
      const { $ref, ...rest } = schema;
      schema = { ...(target || {}), ...rest };
      continue;
    }
    const union = schema.anyOf || schema.oneOf;
    if (union) {
      const options = union.filter((option) => option.type !== "null");
      nullable = nullable || options.length < union.length;
      const { anyOf, oneOf, ...rest } = schema;
      schema = options.length === 1 ? { ...options[0], ...rest } : { ...rest, type: "string" };
      continue;
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) {
      const { allOf, ...rest } = schema;
      schema = { ...allOf[0], ...rest };
      continue;
    }
    break;
  }
  if (Array.isArray(schema.type)) {
    nullable = nullable || schema.type.includes("null");
    schema.type = schema.type.find((type) => type !== "null");
  }
  if (schema.const !== undefined && !schema.enum) schema.enum = [schema.const];
  return { schema, nullable };
}

const sentence = (text) => (text ? `${String(text).trim().replace(/[.!?]?$/, (end) => end || ".")}` : "");
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The bounds of a numeric property: {min, max, minExclusive, maxExclusive}, from the schema, or for
 *  an integer without a maximum the server's limit of the same name (limits.jobs.max_<name>). */
function boundsOf(name, schema, config) {
  const bounds = { min: schema.minimum, max: schema.maximum, minExclusive: false, maxExclusive: false, limitPath: null };
  if (bounds.min === undefined && typeof schema.exclusiveMinimum === "number") {
    bounds.min = schema.exclusiveMinimum;
    bounds.minExclusive = true;
  }
  if (bounds.max === undefined && typeof schema.exclusiveMaximum === "number") {
    bounds.max = schema.exclusiveMaximum;
    bounds.maxExclusive = true;
  }
  if (bounds.max === undefined && schema.type === "integer" && config) {
    const path = `jobs.max_${name}`;
    const value = limitAt(config, path);
    if (typeof value === "number") {
      bounds.max = value;
      bounds.limitPath = path;
    }
  }
  return bounds;
}

const num = (value, integer) => (integer ? formatInt(value) : formatScalar(value));

function rangeText({ min, max, minExclusive, maxExclusive }, integer) {
  if (min !== undefined && max !== undefined && !minExclusive && !maxExclusive) return `${num(min, integer)} to ${num(max, integer)}`;
  const parts = [];
  if (min !== undefined) parts.push(minExclusive ? `more than ${num(min, integer)}` : `at least ${num(min, integer)}`);
  if (max !== undefined) parts.push(maxExclusive ? `less than ${num(max, integer)}` : `at most ${num(max, integer)}`);
  return capital(parts.join(", ")) || "";
}

function checkNumber(raw, name, schema, bounds) {
  const integer = schema.type === "integer";
  if (integer && !/^[-+]?\d+$/.test(raw)) return { error: `${name} must be a whole number.` };
  const value = Number(raw);
  if (!Number.isFinite(value)) return { error: `${name} must be a number.` };
  if (integer && !Number.isSafeInteger(value)) return { error: `${name} is too large to send from this page.` };
  const { min, max, minExclusive, maxExclusive } = bounds;
  const low = min !== undefined && (minExclusive ? value <= min : value < min);
  const high = max !== undefined && (maxExclusive ? value >= max : value > max);
  if (low || high) {
    if (min !== undefined && max !== undefined && !minExclusive && !maxExclusive) {
      return { error: `${name} must be between ${num(min, integer)} and ${num(max, integer)}.` };
    }
    const range = rangeText(bounds, integer);
    return { error: `${name} must be ${range.charAt(0).toLowerCase()}${range.slice(1)}.` };
  }
  if (typeof schema.multipleOf === "number" && schema.multipleOf > 0 && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9) {
    return { error: `${name} must be a multiple of ${formatScalar(schema.multipleOf)}.` };
  }
  return { value };
}

function setProgress(bar, percent, state, text) {
  bar.setAttribute("aria-valuenow", String(percent));
  bar.setAttribute("aria-valuetext", text);
  bar.dataset.state = state;
  bar.querySelector(".progress-fill").style.width = `${percent}%`;
}

/**
 * The fields of `kind` as [{name, node, input, read()}]: node is the .field element to place, input
 * the control to focus, read() -> {value} | {error} | {omit: true} (empty optional: the server's default).
 * options: {prefix: id prefix ("job"), config: GET /kinds answer, values: Map(name -> remembered text),
 *           onError(input, message), onInput(name, value)}
 */
export function paramFields(kind, options) {
  const schema = kind.params_schema || {};
  const required = new Set(schema.required || []);
  const uploads = new Set(kind.upload_fields || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) => {
    const { schema: field, nullable } = resolveProperty(prop, schema);
    const spec = { name, field, nullable, required: required.has(name) && !nullable && field.default === undefined };
    if (uploads.has(name)) return uploadField(spec, options);
    if (Array.isArray(field.enum)) return enumField(spec, options);
    if (field.type === "boolean") return booleanField(spec, options);
    if (field.type === "integer" || field.type === "number") return numberField(spec, options);
    return textField(spec, options);
  });
}

function ids(prefix, name) {
  const id = `${prefix}-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  return { id, hint: `${id}-hint`, error: `${id}-error` };
}

function frame(spec, control, hintText, { id, hint, error }, extra = []) {
  const node = el("div", { class: "field", "data-param": spec.name },
    el("label", { for: id, text: spec.name }),
    control,
    ...extra,
    hintText ? el("span", { class: "hint", id: hint, text: hintText }) : null,
    el("span", { class: "field-error", id: error }));
  return node;
}

function describedBy(input, hintText, { hint, error }) {
  input.setAttribute("aria-describedby", hintText ? `${hint} ${error}` : error);
}

function initial(spec, options) {
  const remembered = options.values?.get(spec.name);
  if (remembered !== undefined) return remembered;
  return spec.field.default === undefined || spec.field.default === null ? "" : String(spec.field.default);
}

function numberField(spec, options) {
  const { name, field } = spec;
  const integer = field.type === "integer";
  const bounds = boundsOf(name, field, options.config);
  const names = ids(options.prefix, name);
  const input = el("input", {
    class: "input num", id: names.id, name: `params.${name}`, type: "number",
    inputmode: integer ? "numeric" : "decimal", step: integer ? "1" : "any",
    min: bounds.min !== undefined && !bounds.minExclusive ? String(bounds.min) : null,
    max: bounds.max !== undefined && !bounds.maxExclusive ? String(bounds.max) : null,
    "data-limit-max": bounds.limitPath, required: spec.required, "data-param": name,
  });
  input.value = initial(spec, options);
  const range = rangeText(bounds, integer);
  const hintText = [sentence(field.description), range ? `${range}.` : ""].filter(Boolean).join(" ");
  describedBy(input, hintText, names);
  input.addEventListener("input", () => { options.onError(input, ""); options.onInput?.(name, input.value); });
  return {
    name, input, node: frame(spec, input, hintText, names),
    read() {
      const raw = input.value.trim();
      if (!raw) return spec.required ? { error: `Enter ${name}.` } : { omit: true };
      return checkNumber(raw, name, field, bounds);
    },
  };
}

function textField(spec, options) {
  const { name, field } = spec;
  const names = ids(options.prefix, name);
  const input = el("input", {
    class: "input", id: names.id, name: `params.${name}`, type: "text", required: spec.required,
    maxlength: field.maxLength !== undefined ? String(field.maxLength) : null, "data-param": name, autocomplete: "off",
  });
  input.value = initial(spec, options);
  const limits = [];
  if (field.minLength && field.maxLength !== undefined) limits.push(`${formatInt(field.minLength)} to ${formatInt(field.maxLength)} characters.`);
  else if (field.maxLength !== undefined) limits.push(`Up to ${formatInt(field.maxLength)} characters.`);
  const hintText = [sentence(field.description), ...limits].filter(Boolean).join(" ");
  describedBy(input, hintText, names);
  input.addEventListener("input", () => { options.onError(input, ""); options.onInput?.(name, input.value); });
  return {
    name, input, node: frame(spec, input, hintText, names),
    read() {
      const value = input.value;
      if (!value) return spec.required ? { error: `Enter ${name}.` } : { omit: true };
      const length = [...value].length;
      if (field.minLength && length < field.minLength) return { error: `${name} needs at least ${formatInt(field.minLength)} characters.` };
      if (field.maxLength !== undefined && length > field.maxLength) return { error: `${name} may have at most ${formatInt(field.maxLength)} characters.` };
      if (field.pattern) {
        let pattern = null;
        try {
          pattern = new RegExp(field.pattern, "u");
        } catch {
          pattern = null; // a pattern this browser cannot read: the server checks it
        }
        if (pattern && !pattern.test(value)) return { error: `${name} is not in the expected format.` };
      }
      return { value };
    },
  };
}

function booleanField(spec, options) {
  const { name, field } = spec;
  const names = ids(options.prefix, name);
  const input = el("input", { class: "check-input", id: names.id, name: `params.${name}`, type: "checkbox", "data-param": name });
  const remembered = options.values?.get(name);
  input.checked = remembered !== undefined ? remembered === "true" : field.default === true;
  const hintText = sentence(field.description);
  describedBy(input, hintText, names);
  input.addEventListener("change", () => { options.onError(input, ""); options.onInput?.(name, String(input.checked)); });
  const node = el("div", { class: "field field-wide", "data-param": name },
    el("div", { class: "check" }, input, el("label", { for: names.id, text: name })),
    hintText ? el("span", { class: "hint", id: names.hint, text: hintText }) : null,
    el("span", { class: "field-error", id: names.error }));
  return { name, input, node, read: () => ({ value: input.checked }) };
}

function enumField(spec, options) {
  const { name, field, nullable } = spec;
  const names = ids(options.prefix, name);
  const values = field.enum.filter((value) => value !== null);
  const select = el("select", { class: "select", id: names.id, name: `params.${name}`, "data-param": name });
  if (nullable || (!spec.required && field.default === undefined)) select.append(new Option("— (server default)", ""));
  values.forEach((value, i) => select.append(new Option(formatScalar(value), String(i))));
  const remembered = options.values?.get(name);
  const chosen = values.findIndex((value) => String(value) === (remembered ?? String(field.default)));
  if (chosen >= 0) select.value = String(chosen);
  const hintText = sentence(field.description);
  describedBy(select, hintText, names);
  select.addEventListener("change", () => {
    options.onError(select, "");
    options.onInput?.(name, select.value === "" ? "" : String(values[Number(select.value)]));
  });
  return {
    name, input: select, node: frame(spec, select, hintText, names),
    read: () => (select.value === "" ? { omit: true } : { value: values[Number(select.value)] }),
  };
}

function uploadField(spec, options) {
  const { name, field } = spec;
  const names = ids(options.prefix, name);
  const maxBytes = options.config ? limitAt(options.config, "uploads.max_bytes") : undefined;
  const input = el("input", { class: "input file-input", id: names.id, name: `params.${name}`, type: "file", "data-param": name });
  const fill = el("div", { class: "progress-fill" });
  const bar = el("div", {
    class: "progress upload-progress", role: "progressbar", "aria-label": `Upload of ${name}`,
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", id: `${names.id}-progress`,
  }, fill);
  const status = el("p", { class: "upload-status", id: `${names.id}-status`, "aria-live": "polite" });
  const box = el("div", { class: "upload-box", hidden: true }, bar, status);
  const hintText = [sentence(field.description), typeof maxBytes === "number" ? `Up to ${formatBytes(maxBytes)}.` : ""]
    .filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", [hintText ? names.hint : "", `${names.id}-status`, names.error].filter(Boolean).join(" "));
  const node = el("div", { class: "field field-wide", "data-param": name },
    el("label", { for: names.id, text: `${name} (file)` }), input, box,
    hintText ? el("span", { class: "hint", id: names.hint, text: hintText }) : null,
    el("span", { class: "field-error", id: names.error }));

  let uploaded = null; // {upload_id, size, sha256, filename}
  let current = null; // the upload in flight: {abort}
  let failed = null;

  const fail = (message) => {
    failed = message;
    uploaded = null;
    setProgress(bar, Number(bar.getAttribute("aria-valuenow")) || 0, "failed", `Upload failed: ${message}`);
    status.replaceChildren(el("span", { class: "text-danger", text: "Upload failed." }));
    options.onError(input, message);
  };

  input.addEventListener("change", async () => {
    if (current) current.abort();
    current = null;
    uploaded = null;
    failed = null;
    options.onError(input, "");
    const file = input.files && input.files[0];
    if (!file) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    setProgress(bar, 0, "running", `0% of ${formatBytes(file.size)}`);
    if (typeof maxBytes === "number" && file.size > maxBytes) {
      fail(`${file.name} is ${formatBytes(file.size)}; uploads may be at most ${formatBytes(maxBytes)}.`);
      return;
    }
    status.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
    const upload = uploadFile("/uploads", file, {
      onProgress(loaded, total) {
        const percent = total ? Math.min(99, Math.floor((loaded / total) * 100)) : 0; // 100 once the server has it
        setProgress(bar, percent, "running", `${percent}% of ${formatBytes(total)}`);
      },
    });
    current = upload;
    try {
      const info = await upload.promise;
      if (current !== upload) return;
      uploaded = info;
      setProgress(bar, 100, "completed", `Uploaded, ${formatBytes(info.size)}`);
      status.replaceChildren(
        el("span", { text: `Uploaded ${info.filename || file.name}: ${formatBytes(info.size)} (${formatInt(info.size)} bytes). SHA-256 ` }),
        el("code", { class: "sha", text: info.sha256 || "—" }));
      options.onInput?.(name, "");
    } catch (error) {
      if (current !== upload) return;
      fail(error.status === 413
        ? (error.detail || `${file.name} is too large${typeof maxBytes === "number" ? `: uploads may be at most ${formatBytes(maxBytes)}` : ""}.`)
        : error.message);
    } finally {
      if (current === upload) current = null;
    }
  });

  return {
    name, input, node, isUpload: true,
    busy: () => Boolean(current),
    read() {
      if (current) return { error: "Wait for the upload to finish." };
      if (failed) return { error: failed };
      if (uploaded) return { value: uploaded.upload_id };
      return spec.required ? { error: "Choose a file to upload." } : { omit: true };
    },
  };
}
