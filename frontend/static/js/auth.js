// Sign-in and registration forms: inline validation, the server's messages, then the dashboard.

import { api, ApiError } from "./api.js";
import { initLayout } from "./layout.js";
import { $, clearFormErrors, safeNext, setBusy, setFieldError, showAlert, showFieldErrors } from "./ui.js";

const form = $("#auth-form");
const mode = form.dataset.mode; // "login" | "register"
const email = $("#email");
const password = $("#password");
const submit = $("#auth-submit");
const errorBox = $("#auth-error");
const notice = $("#auth-notice");
const params = new URLSearchParams(window.location.search);
const next = safeNext(params.get("next"));
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// Keep ?next= when switching between sign-in and registration.
if (params.get("next")) {
  const link = $("#switch-link");
  link.href = `${link.pathname}?next=${encodeURIComponent(next)}`;
}

initLayout({ active: "" }).then((user) => {
  if (user) window.location.replace(next);
});

if (mode === "login") {
  const remembered = sessionStorage.getItem("registered-email");
  if (remembered) {
    email.value = remembered;
    sessionStorage.removeItem("registered-email");
    showAlert(notice, "Your account is ready. Sign in to continue.", "info");
  } else if (params.get("next")) {
    showAlert(notice, "Please sign in to continue.", "info");
  }
}

document.querySelector(".reveal").addEventListener("click", (event) => {
  const button = event.currentTarget;
  const show = password.type === "password";
  password.type = show ? "text" : "password";
  button.textContent = show ? "Hide" : "Show";
  button.setAttribute("aria-pressed", String(show));
  button.setAttribute("aria-label", show ? "Hide password" : "Show password");
});
document.querySelector(".reveal").setAttribute("aria-label", "Show password");

function checkEmail() {
  const value = email.value.trim();
  if (!value) return "Enter your email address.";
  if (!EMAIL_RE.test(value)) return "Enter a valid email address, like name@example.com.";
  return "";
}

function checkPassword() {
  if (!password.value) return mode === "register" ? "Choose a password." : "Enter your password.";
  if (mode === "register" && password.value.length < 8) return `Use at least 8 characters (${password.value.length} so far).`;
  return "";
}

email.addEventListener("blur", () => { if (email.value) setFieldError(email, checkEmail()); });
password.addEventListener("blur", () => { if (password.value) setFieldError(password, checkPassword()); });
email.addEventListener("input", () => { if (email.getAttribute("aria-invalid")) setFieldError(email, checkEmail()); });
password.addEventListener("input", () => { if (password.getAttribute("aria-invalid")) setFieldError(password, checkPassword()); });

function retryText(error) {
  return error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
}

async function signIn(credentials) {
  await api("/auth/session", { method: "POST", body: credentials });
  window.location.assign(next);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFormErrors(form);
  showAlert(errorBox, "");
  const problems = [[email, checkEmail()], [password, checkPassword()]].filter(([, message]) => message);
  for (const [input, message] of problems) setFieldError(input, message);
  if (problems.length) {
    problems[0][0].focus();
    return;
  }
  const credentials = { email: email.value.trim(), password: password.value };
  setBusy(submit, true, mode === "login" ? "Signing in…" : "Creating account…");
  try {
    if (mode === "register") {
      await api("/auth/register", { method: "POST", body: credentials });
      try {
        await signIn(credentials);
      } catch {
        sessionStorage.setItem("registered-email", credentials.email);
        window.location.assign(`/login?next=${encodeURIComponent(next)}`);
      }
      return;
    }
    await signIn(credentials);
  } catch (error) {
    setBusy(submit, false);
    if (!(error instanceof ApiError)) {
      showAlert(errorBox, "Something went wrong. Please try again.");
      return;
    }
    if (error.status === 422 && showFieldErrors(form, error.fieldErrors)) return;
    if (error.status === 409) {
      setFieldError(email, "An account with this email already exists.");
      showAlert(errorBox, "That email is already registered. Sign in instead, or use another address.");
      email.focus();
      return;
    }
    if (error.status === 401) {
      showAlert(errorBox, "Invalid email or password.");
      password.focus();
      return;
    }
    if (error.status === 429) {
      showAlert(errorBox, `Too many attempts from this address.${retryText(error) || " Please wait a minute."}`);
      return;
    }
    showAlert(errorBox, error.message);
  }
});
