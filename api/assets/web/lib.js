// Boxoffice web app, shared parts: building nodes, the session, calls to
// the API and its live streams, forms, formatting. The app is a client of
// the public REST API like any other: it holds no business rule and builds
// every node with `h` (never by parsing a string as markup), so nothing a
// user typed can become markup.

export const main = document.getElementById("main");

/** An element with attributes (`on*` are listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) el.append(child);
  }
  return el;
}

/** Replaces the page and moves focus to it, as a page load would. */
export function show(title, ...nodes) {
  document.title = `${title} · Boxoffice`;
  main.replaceChildren(h("h1", {}, title), ...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  main.focus();
}

/**
 * The access token lives in memory only. A reload gets a new one from the
 * refresh token's cookie (`HttpOnly`: no script here can read it). `page`
 * is aborted when the page changes: its live streams and timers end.
 */
export const session = { access: null, me: null, page: new AbortController() };

export async function request(method, path, body, extra = {}) {
  const headers = { accept: "application/json", ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (session.access) headers.authorization = `Bearer ${session.access}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    return { status: 0, body: { detail: "The network is unreachable. Try again." }, headers: new Headers() };
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * Whether this browser signed in here and has not signed out since: a hint
 * (`"1"`, never a token) in `localStorage`, so that a page load of someone
 * who never signed in does not ask for a refresh that can only answer 401.
 * Without storage, a page load always asks.
 */
const SIGNED_IN = "boxoffice.signed-in";
function remember(signedIn) {
  try {
    if (signedIn) localStorage.setItem(SIGNED_IN, "1"); else localStorage.removeItem(SIGNED_IN);
  } catch { /* storage off: nothing to remember */ }
}
export function maybeSignedIn() {
  try { return localStorage.getItem(SIGNED_IN) !== null; } catch { return true; }
}

/**
 * One refresh at a time: each rotates the cookie's token, and a second
 * refresh with the old one would be taken for a stolen token.
 */
let refreshing = null;
export function refresh() {
  refreshing ??= request("POST", "/v1/auth/refresh").then(({ status, body }) => {
    session.access = status === 200 ? body.access_token : null;
    session.me = status === 200 ? body.user : null;
    // A network failure (status 0) proves nothing either way.
    if (status === 200 || status === 401) remember(status === 200);
    return session.access !== null;
  }).finally(() => { refreshing = null; });
  return refreshing;
}

/** A call to the API; an expired access token is renewed once. */
export async function api(method, path, body, headers) {
  const answer = await request(method, path, body, headers);
  if (answer.status === 401 && session.access && await refresh()) return request(method, path, body, headers);
  if (answer.status === 401) { session.access = null; session.me = null; renderAccount(); }
  return answer;
}

/**
 * Follows a server-sent event stream with the bearer token (which
 * `EventSource` cannot send) until the page changes, reconnecting after a
 * drop; each message's JSON goes to `onmessage`.
 */
export async function follow(path, onmessage) {
  const { signal } = session.page;
  while (!signal.aborted) {
    try {
      const response = await fetch(path, {
        headers: { accept: "text/event-stream", ...(session.access ? { authorization: `Bearer ${session.access}` } : {}) },
        credentials: "same-origin",
        signal,
      });
      if (response.status === 401 && await refresh()) continue;
      if (!response.ok) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replaceAll("\r\n", "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data) onmessage(JSON.parse(data));
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    await sleep(2000);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A form whose fields show the API's field errors next to them. A field is
 * `{name, label, type?, value?, textarea?, required?, hint?, ...attributes}`.
 * `onsubmit` gets the values as strings and returns a problem (shown), a
 * string (shown as done) or nothing; `prefix` keeps ids unique when a page
 * holds several forms.
 */
export function form({ fields, submit, onsubmit, prefix = "f", label }) {
  const alert = h("p", { role: "alert" });
  const done = h("p", { role: "status", class: "ok" });
  const inputs = {};
  const rows = fields.map(({ name, label, type = "text", value, textarea, required = true, hint, ...attributes }) => {
    const id = `${prefix}-${name}`;
    const error = h("p", { class: "field-error", id: `${id}-error` });
    const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
    const input = textarea
      ? h("textarea", { id, name, required, rows: 4, "aria-describedby": described, ...attributes })
      : h("input", { id, name, type, required, "aria-describedby": described, ...attributes });
    if (value !== undefined && value !== null) input.value = value;
    inputs[name] = { input, error };
    return h("div", {}, h("label", { for: id }, label), hint ? h("p", { class: "hint muted", id: `${id}-hint` }, hint) : null, input, error);
  });
  const button = h("button", { type: "submit" }, submit);
  const el = h("form", { novalidate: true, "aria-label": label }, rows, button, alert, done);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.textContent = "";
    done.textContent = "";
    for (const { input, error } of Object.values(inputs)) {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    }
    const values = Object.fromEntries(Object.entries(inputs).map(([k, { input }]) => [k, input.value]));
    button.disabled = true;
    try {
      const problem = await onsubmit(values);
      if (!problem) return;
      if (typeof problem === "string") {
        done.textContent = problem;
        return;
      }
      let placed = false;
      for (const { field, message } of problem.errors ?? []) {
        const target = inputs[field];
        if (!target) continue;
        target.error.textContent = message;
        target.input.setAttribute("aria-invalid", "true");
        if (!placed) target.input.focus();
        placed = true;
      }
      if (!placed) alert.textContent = problem.detail ?? "Something went wrong.";
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

export function money(minor, currency) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 10 ** digits);
}

export function when(iso, timeZone) {
  // Components, not dateStyle/timeStyle: those refuse timeZoneName.
  return new Intl.DateTimeFormat(undefined, {
    weekday: "long", year: "numeric", month: "long", day: "numeric",
    hour: "numeric", minute: "2-digit", timeZone, timeZoneName: "short",
  }).format(new Date(iso));
}

// ---- pages ----

/** An idempotency key (also outside secure contexts, where `randomUUID` is missing). */
export function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Sign in or create an account inline, then carry on with `then` (the
 * selection of tickets or the page the user was on survives).
 */
export function account(then, mode = "sign-in", title = mode === "sign-in" ? "Sign in" : "Create an account") {
  const signedIn = async (body) => {
    session.access = body.access_token;
    session.me = body.user;
    remember(true);
    renderAccount();
    await then();
  };
  const other = mode === "sign-in"
    ? h("p", {}, "New to Boxoffice? ", h("button", { type: "button", class: "link", id: "to-register", onclick: () => account(then, "register", title) }, "Create an account"))
    : h("p", {}, "Have an account? ", h("button", { type: "button", class: "link", id: "to-sign-in", onclick: () => account(then, "sign-in", title) }, "Sign in"));
  const fields = mode === "sign-in"
    ? [
        { name: "email", label: "Email", type: "email", autocomplete: "email" },
        { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
      ]
    : [
        { name: "display_name", label: "Your name", autocomplete: "name" },
        { name: "email", label: "Email", type: "email", autocomplete: "email" },
        { name: "password", label: "Choose a password", type: "password", autocomplete: "new-password" },
      ];
  show(title, form({
    fields,
    submit: mode === "sign-in" ? "Sign in" : "Create account",
    onsubmit: async (values) => {
      const { status, body } = mode === "sign-in"
        ? await api("POST", "/v1/auth/login", values)
        : await api("POST", "/v1/auth/register", values);
      if (status !== 200 && status !== 201) return body;
      await signedIn(body);
    },
  }), other, mode === "sign-in" ? h("p", {}, h("a", { href: "/forgot-password" }, "Forgot your password?")) : null);
}

export function renderAccount() {
  const nav = document.getElementById("account");
  const here = encodeURIComponent(window.location.pathname + window.location.search);
  const manager = ["organizer", "admin"].includes(session.me?.role);
  nav.replaceChildren(...(session.access
    ? [
        manager ? h("a", { href: "/console" }, "Console") : null,
        h("a", { href: "/orders" }, "My orders"),
        h("a", { href: "/tickets" }, "My tickets"),
        h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut }, `Sign out${session.me ? ` (${session.me.display_name})` : ""}`),
      ]
    : [h("a", { href: `/sign-in?next=${here}`, id: "sign-in" }, "Sign in"), h("a", { href: `/register?next=${here}` }, "Create an account")]
  ).filter(Boolean));
}

export async function signOut() {
  await api("POST", "/v1/auth/logout");
  remember(false);
  session.access = null;
  session.me = null;
  renderAccount();
  navigate("/");
}

/** Where `next=` may send the user: a page of this app, nowhere else. */
export function localPath(next) {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

/** Opens a page of the app without a reload (the router listens). */
export function navigate(path) {
  window.history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** Digits after the point in `currency` (2 for EUR, 0 for JPY). */
export function minorDigits(currency) {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
}

/** `YYYY-MM-DDTHH:MM`: what the wall clock of `timeZone` shows at `iso`. */
export function toLocalInput(iso, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** The instant at which the wall clock of `timeZone` shows `local`. */
export function fromLocalInput(local, timeZone) {
  if (!local) return null;
  const wall = Date.parse(`${local}:00Z`);
  if (Number.isNaN(wall)) return local; // the API says what is wrong
  let guess = wall;
  // Twice: the zone's offset at the first guess may differ (a DST change).
  for (let i = 0; i < 2; i++) guess += wall - Date.parse(`${toLocalInput(new Date(guess).toISOString(), timeZone)}:00Z`);
  return new Date(guess).toISOString();
}

/** Downloads what an authenticated GET answers, as `filename`. */
export async function download(path, accept, filename) {
  const response = await fetch(path, { headers: { accept, authorization: `Bearer ${session.access}` } });
  if (!response.ok) return false;
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return true;
}
