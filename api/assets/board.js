// The ops board: everything it shows comes from /v1/ops/queues (admin only).
"use strict";
const $ = (id) => document.getElementById(id);
// The access token lives in memory only; a reload signs back in with the
// web app's refresh cookie (HttpOnly), never from browser storage.
let token = null;
let openQueue = null;

async function api(method, path) {
  const res = await fetch(path, { method, headers: { authorization: "Bearer " + token } });
  if (res.status === 401 || res.status === 403) { signOut(); throw new Error("not an admin"); }
  if (!res.ok) throw new Error(method + " " + path + ": " + res.status);
  return res.json();
}

function signOut() {
  token = null;
  $("board").hidden = true;
  $("login").hidden = false;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function age(secs) {
  if (secs == null) return "–";
  if (secs < 60) return secs.toFixed(1) + " s";
  if (secs < 3600) return (secs / 60).toFixed(1) + " min";
  return (secs / 3600).toFixed(1) + " h";
}

const SVG = "http://www.w3.org/2000/svg";

/** Done (blue) and failed (red) jobs per minute, oldest first, as bars. */
function sparkline(minutes) {
  const width = 120, height = 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  const done = minutes.reduce((n, m) => n + m.done, 0);
  const failed = minutes.reduce((n, m) => n + m.failed, 0);
  const title = document.createElementNS(SVG, "title");
  title.textContent = done + " done, " + failed + " failed in the last " + minutes.length + " min";
  svg.append(title);
  const max = Math.max(1, ...minutes.map((m) => m.done + m.failed));
  const bar = width / Math.max(1, minutes.length);
  minutes.forEach((m, i) => {
    let y = height;
    for (const [count, cls] of [[m.done, "ok"], [m.failed, "bad"]]) {
      if (!count) continue;
      const tall = Math.max(1, (count / max) * height);
      y -= tall;
      const rect = document.createElementNS(SVG, "rect");
      for (const [k, v] of Object.entries({ x: i * bar, y, width: Math.max(1, bar - 0.5), height: tall, class: cls })) rect.setAttribute(k, v);
      svg.append(rect);
    }
  });
  return svg;
}

function render(queues) {
  const body = $("queues");
  body.replaceChildren();
  for (const q of queues) {
    const tr = document.createElement("tr");
    const last = q.per_minute.length ? q.per_minute[q.per_minute.length - 1] : { done: 0, failed: 0 };
    const alive = q.worker_heartbeats.filter((w) => w.alive).length;
    tr.append(
      cell(q.queue),
      cell(q.paused ? "paused" : "running", q.paused ? "paused" : ""),
      jobsCell(q, "pending"), jobsCell(q, "scheduled"), jobsCell(q, "running"), cell(q.done), jobsCell(q, "failed"),
    );
    const dead = jobsCell(q, "dead", q.dead > 0 ? "dead" : "");
    const hour = document.createElement("td");
    hour.append(sparkline(q.per_minute));
    tr.append(dead, cell(age(q.oldest_pending_age_secs)), cell(last.done + (last.failed ? " (" + last.failed + " failed)" : "")),
      hour, cell(alive + " / " + q.worker_heartbeats.length));
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.textContent = q.paused ? "Resume" : "Pause";
    button.onclick = () => api("POST", "/v1/ops/queues/" + q.queue + (q.paused ? "/resume" : "/pause")).then(refresh);
    action.append(button);
    tr.append(action);
    body.append(tr);
  }
  $("updated").textContent = "Last update " + new Date().toLocaleTimeString() + ".";
}

/** A count that opens the list of the queue's jobs in that state. */
function jobsCell(q, status, className) {
  const td = cell("", className);
  const link = document.createElement("a");
  link.href = "#jobs";
  link.textContent = q[status];
  link.setAttribute("aria-label", q[status] + " " + status + " jobs in " + q.queue);
  link.onclick = (event) => { event.preventDefault(); showJobs(q.queue, status); };
  td.append(link);
  return td;
}

const clock = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

async function showJobs(queue, status = "dead") {
  openQueue = queue;
  const jobs = await api("GET", "/v1/ops/queues/" + queue + "/jobs?status=" + status + "&limit=100");
  $("jobs").hidden = false;
  $("retry-all").hidden = status !== "dead";
  $("jobs-title").textContent = status[0].toUpperCase() + status.slice(1) + " jobs in " + queue + " (" + jobs.length + (jobs.length === 100 ? "+" : "") + ")";
  const rows = $("job-rows");
  rows.replaceChildren();
  for (const job of jobs) {
    const tr = document.createElement("tr");
    const payload = cell(JSON.stringify(job.payload), "payload");
    payload.title = JSON.stringify(job.payload, null, 2);
    const error = cell(job.last_error || "", "payload");
    error.title = job.last_error || "";
    tr.append(cell(job.id), payload, cell(job.attempts ?? ""), error, cell(clock(job.enqueued_at_ms)), cell(clock(job.run_at_ms)));
    const td = document.createElement("td");
    for (const [label, action] of status === "dead" ? [["Retry", "retry"], ["Discard", "discard"]] : []) {
      const b = document.createElement("button");
      b.textContent = label;
      b.onclick = () => api("POST", "/v1/ops/queues/" + queue + "/jobs/" + job.id + "/" + action).then(() => showJobs(queue));
      td.append(b);
    }
    tr.append(td);
    rows.append(tr);
  }
}

$("retry-all").onclick = () => openQueue && api("POST", "/v1/ops/queues/" + openQueue + "/jobs/all/retry").then(() => showJobs(openQueue));

function renderCircuits(circuits) {
  const body = $("circuits");
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const c of circuits) {
    const tr = document.createElement("tr");
    tr.append(cell(c.provider), cell(c.process), cell(c.state.replace("_", "-"), c.state === "closed" ? "" : "dead"),
      cell(age(now - c.reported_at) + " ago"));
    body.append(tr);
  }
}

async function refresh() {
  if (!token) return;
  try {
    render(await api("GET", "/v1/ops/queues"));
    renderCircuits(await api("GET", "/v1/ops/providers"));
  } catch (e) { $("updated").textContent = String(e); }
}

$("login-form").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const res = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: form.get("email"), password: form.get("password") }),
  });
  const body = await res.json();
  if (!res.ok) { $("login-error").textContent = body.detail || "Sign-in failed."; return; }
  if (body.user.role !== "admin") { $("login-error").textContent = "This account is not an admin."; return; }
  token = body.access_token;
  start();
};

function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  refresh();
}

async function restore() {
  const res = await fetch("/v1/auth/refresh", { method: "POST", headers: { accept: "application/json" }, credentials: "same-origin" });
  if (res.ok) {
    const body = await res.json();
    if (body.user?.role === "admin") token = body.access_token;
  }
  if (token) start(); else signOut();
}

restore();
setInterval(refresh, 2000);
