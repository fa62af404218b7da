// Pilothouse dashboard: the little JavaScript the pages need. No framework, no build step.
// 1. Forms with data-api call the JSON API with the session's CSRF token (the API authorises and audits).
// 2. Elements with data-live refresh themselves from a fragment URL every few seconds, without a reload.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function fieldValue(el) {
  const kind = el.dataset.type || "";
  if (kind === "bool") return el.type === "checkbox" ? el.checked : el.value === "true";
  if (el.value === "" && el.dataset.optional !== undefined) return undefined;
  if (kind === "number") return el.value === "" ? null : Number(el.value);
  if (kind === "json") return el.value === "" ? null : JSON.parse(el.value);
  if (kind === "list") return el.value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  return el.value;
}

function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "submit") continue;
    if (el.type === "radio" && !el.checked) continue;
    if (el.type === "checkbox" && el.dataset.type !== "bool" && !el.checked) continue;
    const value = fieldValue(el);
    if (value !== undefined) body[el.name] = value;
  }
  return body;
}

async function callApi(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() } };
  if (body !== null && method !== "GET" && method !== "DELETE") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { raw: text }; }
  return { ok: response.ok, status: response.status, data };
}

function describeError(result) {
  const err = result.data && result.data.error;
  return err && err.message ? `${result.status}: ${err.message}` : `request failed (${result.status})`;
}

async function submitApiForm(event) {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  const status = form.querySelector(".result");
  const button = form.querySelector('button[type="submit"]');
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  let body;
  try { body = formBody(form); } catch (e) {
    if (status) { status.textContent = `invalid input: ${e.message}`; status.className = "result fail"; }
    return;
  }
  if (button) button.disabled = true;
  if (status) { status.textContent = "working…"; status.className = "result"; }
  try {
    const result = await callApi((form.dataset.method || "POST").toUpperCase(), form.dataset.api, body);
    if (!result.ok) {
      if (status) { status.textContent = describeError(result); status.className = "result fail"; }
      return;
    }
    const then = form.dataset.then || "";
    if (then === "reload") { window.location.reload(); return; }
    if (then.startsWith("go:")) { window.location.assign(then.slice(3)); return; }
    if (status) {
      status.textContent = form.dataset.done || "done";
      status.className = "result ok";
    }
    if (form.dataset.show) showField(form.dataset.show, result.data);
    form.dispatchEvent(new CustomEvent("api:done", { detail: result.data, bubbles: true }));
  } catch (e) {
    if (status) { status.textContent = `network error: ${e.message}`; status.className = "result fail"; }
  } finally {
    if (button) button.disabled = false;
  }
}

// data-show="field:box-id": after success, put the answer's `field` into the first input of the (hidden) element
// box-id and reveal it: a secret shown once, such as a new API key.
function showField(spec, data) {
  const [field, boxId] = spec.split(":");
  const box = document.getElementById(boxId);
  if (!box || !data || data[field] === undefined) return;
  const input = box.querySelector("input, textarea, output");
  if (input) input.value = String(data[field]);
  box.hidden = false;
  if (input && input.select) input.select();
}

async function refreshLive(el) {
  if (document.hidden || el.dataset.livePaused === "true") return;
  try {
    const response = await fetch(el.dataset.live, { credentials: "same-origin", headers: { "X-Live": "1" } });
    if (response.status === 401 || response.redirected) { el.dataset.livePaused = "true"; return; }
    if (response.ok) {
      el.innerHTML = await response.text();
      el.dataset.liveUpdated = String(Date.now());
    }
  } catch (e) { /* the server may be restarting: try again next tick */ }
}

function startLive(el) {
  const every = Math.max(1, Number(el.dataset.liveEvery || "3")) * 1000;
  window.setInterval(() => refreshLive(el), every);
}

document.addEventListener("submit", submitApiForm);
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(startLive);
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form && select.form.requestSubmit());
  });
  document.querySelectorAll("button[data-live-toggle]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.liveToggle);
      if (!target) return;
      const paused = target.dataset.livePaused === "true";
      target.dataset.livePaused = paused ? "false" : "true";
      button.textContent = paused ? "Pause" : "Resume";
      button.setAttribute("aria-pressed", paused ? "false" : "true");
    });
  });
});
