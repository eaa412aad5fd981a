// Guide: put this server's address into every example, give each code block a Copy button, and list
// the server's job kinds (its limits fill the page through initLayout, from GET /kinds).

import { formatInt, formatNumber } from "./format.js";
import { initLayout } from "./layout.js";
import { getKinds } from "./limits.js";
import { copyButton, el } from "./ui.js";

const PLACEHOLDER = "http://127.0.0.1:8000";
const origin = window.location.origin;

initLayout({ active: "guide" });

document.getElementById("origin-inline").textContent = origin;
for (const code of document.querySelectorAll(".code pre code")) {
  if (code.textContent.includes(PLACEHOLDER)) code.textContent = code.textContent.split(PLACEHOLDER).join(origin);
  const box = code.closest(".code");
  box.append(copyButton(() => code.textContent, { label: "Copy" }));
}

function budgetText(seconds) {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${formatInt(seconds / 3600)} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${formatInt(seconds / 60)} min`;
  return `${formatNumber(seconds, 1)} s`;
}

getKinds().then((config) => {
  document.getElementById("kinds-body").replaceChildren(...config.kinds.map((kind) => el("tr", { "data-kind": kind.name },
    el("td", {}, el("code", { text: kind.name })),
    el("td", { text: kind.description }),
    el("td", { text: budgetText(kind.timeout_seconds) }))));
}, () => {});
