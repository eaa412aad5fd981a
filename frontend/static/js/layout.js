// The frame of every page: navbar (links, auth state, health dot, theme toggle, hamburger),
// footer and toast region, and the page's limits (limits.js). Pages call initLayout() and await the
// signed-in user (or null).

import { api, ApiError, hasSessionHint } from "./api.js";
import { showLimits } from "./limits.js";
import { el, icon, toast } from "./ui.js";

export const RAY_DASHBOARD_URL = "http://127.0.0.1:8265";
const HEALTH_EVERY_MS = 10_000;

const LINKS = [
  { key: "home", href: "/", text: "Home" },
  { key: "dashboard", href: "/dashboard", text: "Dashboard" },
  { key: "guide", href: "/guide", text: "Guide" },
  { key: "docs", href: "/docs", text: "API docs" },
  { key: "ray", href: RAY_DASHBOARD_URL, text: "Ray dashboard", external: true },
];

let userPromise = null;
let authProblem = null;

/** The signed-in user ({user_id, email}) or null; asks the server once per page. */
export function currentUser() {
  if (!userPromise) {
    userPromise = hasSessionHint()
      ? api("/me").catch((error) => {
          if (!(error instanceof ApiError) || error.status !== 401) authProblem = error;
          return null;
        })
      : Promise.resolve(null);
  }
  return userPromise;
}

/** Why currentUser() resolved to null when it was not a plain "signed out" (server down, ...). */
export const signInProblem = () => authProblem;

export async function signOut() {
  try {
    await api("/auth/session", { method: "DELETE" });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      toast(`Sign-out failed: ${error.message}`, { kind: "error" });
      return;
    }
  }
  // The session cookie is HttpOnly (the server clears it); clear the readable CSRF cookie too.
  document.cookie = "csrf_token=; Max-Age=0; path=/; SameSite=Strict";
  window.location.assign("/");
}

// ---- theme -----------------------------------------------------------------------------------

function currentTheme() {
  return document.documentElement.getAttribute("data-theme") === "light" ? "light" : "dark";
}

function themeButton() {
  const button = el("button", { type: "button", class: "icon-btn theme-toggle" });
  const render = () => {
    const theme = currentTheme();
    const next = theme === "dark" ? "light" : "dark";
    button.replaceChildren(icon(theme === "dark" ? "sun" : "moon"));
    button.setAttribute("aria-label", `Switch to ${next} theme`);
    button.title = `Switch to ${next} theme`;
  };
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try {
      localStorage.setItem("theme", next);
    } catch {
      /* not remembered when storage is blocked */
    }
    render();
  });
  render();
  return button;
}

// ---- health ----------------------------------------------------------------------------------

function healthIndicator() {
  const label = el("span", { class: "health-label", text: "Checking API…" });
  const node = el("span", { class: "health", "data-state": "unknown", role: "status", title: "Checking API status" },
    el("span", { class: "health-dot", "aria-hidden": "true" }), label);
  let last = null;
  const set = (state, text) => {
    if (state === last) return;
    last = state;
    node.dataset.state = state;
    label.textContent = text;
    node.title = text;
  };
  const check = async () => {
    if (document.hidden) return;
    try {
      const health = await api("/monitoring/health");
      set(health && health.status === "ok" ? "ok" : "down", health && health.status === "ok" ? "API healthy" : "API degraded");
      if (health && health.version) document.querySelectorAll("[data-version]").forEach((n) => { n.textContent = `v${health.version}`; });
      if (health && health.ray_dashboard_url) {
        document.querySelectorAll("a[data-ray-dashboard]").forEach((a) => { a.href = health.ray_dashboard_url; });
      }
    } catch (error) {
      set("down", error.status === 503 ? "API degraded" : "API unreachable");
    }
  };
  check();
  setInterval(check, HEALTH_EVERY_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) check(); });
  return node;
}

// ---- navbar ----------------------------------------------------------------------------------

function navLinks(active) {
  return el("ul", { class: "nav-links" }, LINKS.map((link) => el("li", {},
    el("a", { href: link.href, "aria-current": link.key === active ? "page" : null,
              "data-ray-dashboard": link.key === "ray" },
      link.text,
      link.external ? icon("external", "ext-icon") : null,
      link.external ? el("span", { class: "sr-only", text: " (external)" }) : null))));
}

function signedOutLinks() {
  const here = window.location.pathname;
  const next = here.startsWith("/dashboard") ? `?next=${encodeURIComponent(here)}` : "";
  return [
    el("a", { class: "btn btn-ghost btn-sm", href: `/login${next}`, text: "Sign in" }),
    el("a", { class: "btn btn-primary btn-sm", href: "/register", text: "Register" }),
  ];
}

function userMenu(user) {
  const menuId = "user-menu";
  const button = el("button", {
    type: "button", class: "btn btn-ghost btn-sm user-menu-button",
    "aria-expanded": "false", "aria-controls": menuId,
  }, icon("user"), el("span", { class: "email", text: user.email || "Account" }), el("span", { class: "sr-only", text: " (account menu)" }), icon("chevron"));
  const signOutButton = el("button", { type: "button", class: "sign-out" }, "Sign out");
  const menu = el("div", { id: menuId, class: "menu", hidden: true },
    el("div", { class: "menu-header" }, "Signed in as ", el("strong", { text: user.email || "" })),
    el("a", { href: "/dashboard", text: "Dashboard" }),
    el("a", { href: "/guide", text: "API guide" }),
    signOutButton);
  const wrap = el("div", { class: "user-menu" }, button, menu);
  const setOpen = (open) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => setOpen(menu.hidden));
  wrap.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !menu.hidden) { setOpen(false); button.focus(); }
  });
  document.addEventListener("click", (event) => { if (!wrap.contains(event.target)) setOpen(false); });
  wrap.addEventListener("focusout", (event) => { if (event.relatedTarget && !wrap.contains(event.relatedTarget)) setOpen(false); });
  signOutButton.addEventListener("click", () => signOut());
  return wrap;
}

function buildHeader(active) {
  const auth = el("div", { class: "nav-auth" });
  const panel = el("nav", { id: "nav-panel", class: "nav-panel", "aria-label": "Main" }, navLinks(active), auth);
  const toggle = el("button", {
    type: "button", class: "icon-btn menu-toggle", "aria-controls": "nav-panel", "aria-expanded": "false", "aria-label": "Open menu",
  }, icon("menu"));
  const setOpen = (open) => {
    panel.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.setAttribute("aria-label", open ? "Close menu" : "Open menu");
    toggle.replaceChildren(icon(open ? "close" : "menu"));
  };
  toggle.addEventListener("click", () => setOpen(!panel.classList.contains("open")));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && panel.classList.contains("open")) { setOpen(false); toggle.focus(); }
  });
  window.matchMedia("(min-width: 900px)").addEventListener("change", (event) => { if (event.matches) setOpen(false); });

  const brand = el("a", { class: "brand", href: "/" },
    el("img", { src: "/static/img/logo.svg", alt: "", width: "28", height: "28" }),
    el("span", { text: "Ray Jobs" }));
  const tools = el("div", { class: "nav-tools" }, healthIndicator(), themeButton(), toggle);
  const bar = el("div", { class: "container nav" }, brand, panel, tools);
  return { bar, auth };
}

function buildFooter() {
  return el("div", { class: "container" },
    el("p", {}, "Ray Jobs ", el("span", { "data-version": "" }), " · parallel computation on Ray, served by Ray Serve + FastAPI"),
    el("nav", { "aria-label": "Footer" },
      el("a", { href: "/guide", text: "Guide" }),
      el("a", { href: "/docs", text: "Swagger UI" }),
      el("a", { href: "/redoc", text: "ReDoc" }),
      el("a", { href: RAY_DASHBOARD_URL, text: "Ray dashboard", "data-ray-dashboard": true })));
}

/** Fill the page's <header id="site-header"> and <footer id="site-footer">; resolve the user. */
export async function initLayout({ active = "", wide = false } = {}) {
  const header = document.getElementById("site-header");
  const { bar, auth } = buildHeader(active);
  header.replaceChildren(bar);
  const footer = document.getElementById("site-footer");
  if (footer) footer.replaceChildren(buildFooter());
  if (wide) document.querySelectorAll(".site-header .container, .site-footer .container").forEach((n) => n.classList.add("container-wide"));
  showLimits(); // the page's limits, from GET /kinds

  const user = await currentUser();
  auth.replaceChildren(...(user ? [userMenu(user)] : signedOutLinks()));
  document.documentElement.dataset.auth = user ? "in" : "out";
  return user;
}
