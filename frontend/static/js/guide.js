// Guide: put this server's address into every example and give each code block a Copy button.

import { initLayout } from "./layout.js";
import { copyButton } from "./ui.js";

const PLACEHOLDER = "http://127.0.0.1:8000";
const origin = window.location.origin;

initLayout({ active: "guide" });

document.getElementById("origin-inline").textContent = origin;
for (const code of document.querySelectorAll(".code pre code")) {
  if (code.textContent.includes(PLACEHOLDER)) code.textContent = code.textContent.split(PLACEHOLDER).join(origin);
  const box = code.closest(".code");
  box.append(copyButton(() => code.textContent, { label: "Copy" }));
}
