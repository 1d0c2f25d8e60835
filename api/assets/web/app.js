// Boxoffice web app: a client of the public REST API like any other. It
// holds no business rule and builds every node with `h` (never by parsing
// a string as markup), so nothing a user typed can become markup.

const main = document.getElementById("main");

/** An element with attributes (`on*` are listeners) and children. */
function h(tag, attrs = {}, ...children) {
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
function show(title, ...nodes) {
  document.title = `${title} · Boxoffice`;
  main.replaceChildren(h("h1", {}, title), ...nodes);
  main.focus();
}

/**
 * The access token lives in memory only. A reload gets a new one from the
 * refresh token's cookie (`HttpOnly`: no script here can read it).
 */
let access = null;

async function restoreSession() {
  const { status, body } = await api("POST", "/v1/auth/refresh");
  if (status === 200) access = body.access_token;
}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (access) headers.authorization = `Bearer ${access}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    return { status: 0, body: { detail: "The network is unreachable. Try again." } };
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
  return { status: response.status, body: parsed };
}

/** A form whose fields show the API's field errors next to them. */
function form({ fields, submit, onsubmit }) {
  const alert = h("p", { role: "alert" });
  const inputs = {};
  const rows = fields.map(({ name, label, type = "text", autocomplete, required = true }) => {
    const id = `f-${name}`;
    const error = h("p", { class: "field-error", id: `${id}-error` });
    inputs[name] = { input: h("input", { id, name, type, autocomplete, required, "aria-describedby": `${id}-error` }), error };
    return h("div", {}, h("label", { for: id }, label), inputs[name].input, error);
  });
  const button = h("button", { type: "submit" }, submit);
  const el = h("form", { novalidate: true }, rows, button, alert);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.textContent = "";
    for (const { input, error } of Object.values(inputs)) {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    }
    const values = Object.fromEntries(Object.entries(inputs).map(([k, { input }]) => [k, input.value]));
    button.disabled = true;
    try {
      const problem = await onsubmit(values);
      if (!problem) return;
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

function money(minor, currency) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 10 ** digits);
}

function when(iso, timeZone) {
  // Components, not dateStyle/timeStyle: those refuse timeZoneName.
  return new Intl.DateTimeFormat(undefined, {
    weekday: "long", year: "numeric", month: "long", day: "numeric",
    hour: "numeric", minute: "2-digit", timeZone, timeZoneName: "short",
  }).format(new Date(iso));
}

// ---- pages ----

async function home() {
  const list = h("ul", { class: "events", "aria-live": "polite" });
  const search = h("input", { id: "q", type: "search", name: "q", autocomplete: "off" });
  const load = async () => {
    const q = search.value.trim();
    const { status, body } = await api("GET", `/v1/events${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    if (status !== 200) {
      list.replaceChildren(h("li", { role: "alert" }, body?.detail ?? "Events could not be loaded."));
      return;
    }
    list.replaceChildren(...(body.items.length ? body.items.map((e) => h("li", {},
      h("h2", {}, h("a", { href: `/events/${e.id}` }, e.title)),
      h("p", { class: "muted" }, `${when(e.starts_at, e.timezone)} · ${e.venue_name}, ${e.city}`),
      e.min_price_minor != null ? h("p", {}, `From ${money(e.min_price_minor, e.currency)}`) : null,
    )) : [h("li", {}, "No events match.")]));
  };
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  show("Events", h("label", { for: "q" }, "Search events"), search, list);
  await load();
}

async function eventPage(id) {
  const { status, body } = await api("GET", `/v1/events/${encodeURIComponent(id)}`);
  if (status !== 200) return show("Event not found", h("p", {}, body?.detail ?? ""), h("a", { href: "/" }, "All events"));
  const e = body;
  const rows = e.tiers.map((t) => h("tr", {},
    h("th", { scope: "row" }, t.name),
    h("td", {}, money(t.price_minor, t.currency)),
    h("td", {}, t.remaining === 0 ? "Sold out" : t.low_stock ? `Almost sold out (${t.remaining} left)` : `${t.remaining} left`),
  ));
  show(e.title,
    h("p", { class: "muted" }, `${when(e.starts_at, e.timezone)} · ${e.venue_name}, ${e.address}, ${e.city}`),
    h("p", {}, e.description),
    h("table", {}, h("caption", { class: "muted" }, "Tickets"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tier"), h("th", { scope: "col" }, "Price"), h("th", { scope: "col" }, "Availability"))),
      h("tbody", {}, rows)),
  );
}

async function verifyEmail(params) {
  const token = params.get("token");
  if (!token) return show("Verify your email", h("p", { role: "alert" }, "This link has no token. Open the link from the email again."));
  show("Verify your email", h("p", { "aria-live": "polite", id: "status" }, "Checking your link…"));
  const { status, body } = await api("POST", "/v1/auth/verify-email", { token });
  const message = status === 200
    ? h("p", { class: "ok", id: "status" }, `Thank you: ${body.email} is verified.`)
    : h("p", { role: "alert", id: "status" }, body?.detail ?? "The link could not be checked.");
  show(status === 200 ? "Email verified" : "Verify your email", message, h("a", { href: "/" }, "Browse events"));
}

function forgotPassword() {
  show("Forgot your password?",
    h("p", {}, "We will email you a link to choose a new one."),
    form({
      fields: [{ name: "email", label: "Email", type: "email", autocomplete: "email" }],
      submit: "Email me a link",
      onsubmit: async ({ email }) => {
        const { status, body } = await api("POST", "/v1/auth/forgot-password", { email });
        if (status !== 202) return body;
        show("Check your email", h("p", { class: "ok" }, `If ${email} has an account, a link to reset its password is on its way.`));
      },
    }));
}

function resetPassword(params) {
  const token = params.get("token");
  if (!token) return show("Choose a new password", h("p", { role: "alert" }, "This link has no token."), h("a", { href: "/forgot-password" }, "Ask for a new link"));
  show("Choose a new password", form({
    fields: [{ name: "password", label: "New password", type: "password", autocomplete: "new-password" }],
    submit: "Set password",
    onsubmit: async ({ password }) => {
      const { status, body } = await api("POST", "/v1/auth/reset-password", { token, password });
      if (status !== 204) return body;
      show("Password changed", h("p", { class: "ok" }, "Your password is changed and every session signed out."), h("a", { href: "/" }, "Browse events"));
    },
  }));
}

/** Signs in inline, then carries on with `then`. */
function signIn(then) {
  show("Sign in", form({
    fields: [
      { name: "email", label: "Email", type: "email", autocomplete: "email" },
      { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
    ],
    submit: "Sign in",
    onsubmit: async ({ email, password }) => {
      const { status, body } = await api("POST", "/v1/auth/login", { email, password });
      if (status !== 200) return body;
      access = body.access_token;
      renderAccount();
      await then();
    },
  }), h("p", {}, h("a", { href: "/forgot-password" }, "Forgot your password?")));
}

function renderAccount() {
  const nav = document.getElementById("account");
  nav.replaceChildren(access ? h("span", {}, "Signed in") : h("a", { href: "/forgot-password" }, "Forgot password"));
}

const ORDER_STATUS = {
  pending: "Being placed…",
  awaiting_payment: "Seats held: awaiting payment",
  paid: "Paid",
  cancelled: "Cancelled",
  expired: "Expired: the seats were released",
  rejected: "Not placed",
  refunded: "Refunded",
  partially_refunded: "Partly refunded",
};

async function orderPage(id) {
  if (!access) return signIn(() => orderPage(id));
  const { status, body } = await api("GET", `/v1/orders/${encodeURIComponent(id)}`);
  if (status === 401) { access = null; return signIn(() => orderPage(id)); }
  if (status !== 200) return show("Order not found", h("p", {}, body?.detail ?? ""));
  const o = body;
  show("Your order",
    h("p", { id: "order-status", "aria-live": "polite" }, ORDER_STATUS[o.status] ?? o.status),
    o.reason ? h("p", { class: "muted" }, o.reason) : null,
    h("p", {}, `Total ${money(o.total_minor, o.currency)}`),
    o.status === "awaiting_payment" && o.checkout_url ? h("p", {}, h("a", { href: o.checkout_url }, "Pay now")) : null,
  );
}

function notFound() {
  show("Page not found", h("p", {}, "There is nothing at this address."), h("a", { href: "/" }, "All events"));
}

function route() {
  const { pathname, search } = window.location;
  const params = new URLSearchParams(search);
  const event = pathname.match(/^\/events\/([^/]+)$/);
  if (pathname === "/") return home();
  if (event) return eventPage(event[1]);
  if (pathname === "/verify-email") return verifyEmail(params);
  if (pathname === "/forgot-password") return forgotPassword();
  if (pathname === "/reset-password") return resetPassword(params);
  const order = pathname.match(/^\/orders\/([^/]+)$/);
  if (order) return orderPage(order[1]);
  return notFound();
}

// A page that fails says so instead of standing half drawn.
window.addEventListener("unhandledrejection", (event) => {
  main.append(h("p", { role: "alert" }, `Something went wrong: ${event.reason?.message ?? event.reason}`));
});

await restoreSession();
renderAccount();
route();
