// 404: the frame, plus the path that was asked for (as text).
import { initLayout } from "./layout.js";

initLayout();
document.getElementById("missing-path").textContent = window.location.pathname;
