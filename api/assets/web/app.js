// Boxoffice web app: the storefront (events, buying, the buyer's orders and
// tickets), the pages emailed links open, and the router; the organizer
// console is in `console.js`.

import {
  account, api, follow, form, h, localPath, main, maybeSignedIn, money, navigate,
  newKey, refresh, renderAccount, session, show, sleep, when,
} from "/app/lib.js";
import { consolePage } from "/app/console.js";

/**
 * The storefront: search as you type, filters (city, category, dates,
 * available now), "near me" with the browser's location when allowed, and
 * more results on demand. The filters live in the address, so a search can
 * be shared and the back button returns to it.
 */
async function home(params) {
  const list = h("ul", { class: "events", id: "events", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", id: "more", hidden: true }, "More events");
  const status = h("p", { role: "status", class: "muted", id: "near-status" });
  const input = (name, label, attrs = {}) => {
    const el = h("input", { id: `search-${name}`, name, autocomplete: "off", ...attrs });
    el.value = params.get(name) ?? "";
    return [h("label", { for: `search-${name}` }, label), el];
  };
  const [qLabel, q] = input("q", "Search events", { type: "search", id: "q" });
  qLabel.setAttribute("for", "q");
  const [cityLabel, city] = input("city", "City");
  const [categoryLabel, category] = input("category", "Category");
  const [fromLabel, from] = input("from", "From", { type: "date" });
  const [toLabel, to] = input("to", "To", { type: "date" });
  const available = h("input", { type: "checkbox", id: "search-available", checked: params.get("available") === "true" });
  let near = params.get("near");

  const query = () => {
    const out = new URLSearchParams();
    for (const [name, el] of [["q", q], ["city", city], ["category", category], ["from", from], ["to", to]]) {
      if (el.value.trim()) out.set(name, el.value.trim());
    }
    if (available.checked) out.set("available", "true");
    if (near) {
      out.set("near", near);
      out.set("sort", "distance");
    }
    return out;
  };
  const item = (e) => h("li", {},
    h("h2", {}, h("a", { href: `/events/${e.id}` }, e.title)),
    h("p", { class: "muted" }, `${when(e.starts_at, e.timezone)} · ${e.venue_name}, ${e.city}${e.distance_km != null ? ` · ${e.distance_km.toFixed(1)} km away` : ""}`),
    e.min_price_minor != null ? h("p", {}, `From ${money(e.min_price_minor, e.currency)}`) : null,
    e.available ? null : h("p", { class: "muted" }, "Sold out"));
  let cursor = null;
  // Answers can come back out of order while the user types: only the
  // latest request draws.
  let latest = 0;
  const load = async (append = false) => {
    const mine = ++latest;
    const search = query();
    if (append && cursor) search.set("cursor", cursor);
    if (!append) window.history.replaceState(null, "", `/${query().size ? `?${query()}` : ""}`);
    const { status: code, body } = await api("GET", `/v1/events?${search}`);
    if (mine !== latest) return;
    if (code !== 200) {
      const why = body?.errors?.map((e) => `${e.field} ${e.message}`).join("; ") || body?.detail || "Events could not be loaded.";
      list.replaceChildren(h("li", { role: "alert" }, why));
      more.hidden = true;
      return;
    }
    const items = body.items.map(item);
    if (append) list.append(...items);
    else list.replaceChildren(...(items.length ? items : [h("li", {}, "No events match.")]));
    cursor = body.next_cursor;
    more.hidden = !cursor;
  };
  let timer;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => load(), 200); };
  // "change" too: clearing a field (a browser's clear button, autofill) may fire only that.
  for (const el of [q, city, category]) for (const kind of ["input", "change"]) el.addEventListener(kind, soon);
  for (const el of [from, to, available]) el.addEventListener("change", () => load());
  more.addEventListener("click", () => load(true));
  const nearMe = h("button", {
    type: "button", class: "secondary", id: "near-me",
    onclick: () => {
      if (near) {
        near = null;
        nearMe.textContent = "Near me";
        status.textContent = "";
        return load();
      }
      if (!navigator.geolocation) { status.textContent = "This browser cannot tell where you are."; return; }
      status.textContent = "Finding where you are…";
      navigator.geolocation.getCurrentPosition((where) => {
        near = `${where.coords.latitude.toFixed(4)},${where.coords.longitude.toFixed(4)}`;
        nearMe.textContent = "Anywhere";
        status.textContent = "Nearest first, within 50 km.";
        load();
      }, () => { status.textContent = "Your location is not available: search by city instead."; });
    },
  }, near ? "Anywhere" : "Near me");

  show("Events",
    h("form", { role: "search", class: "filters", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      h("div", { class: "wide" }, qLabel, q),
      h("div", {}, cityLabel, city),
      h("div", {}, categoryLabel, category),
      h("div", {}, fromLabel, from),
      h("div", {}, toLabel, to),
      h("div", { class: "check-row" }, h("label", { for: "search-available", class: "check" }, available, " Tickets available now"), nearMe)),
    status, list, more);
  await load();
}

const SALE_STATE = { not_started: "Not on sale yet", ended: "Sales have ended", sold_out: "Sold out" };

function availability(t) {
  if (t.sale_state === "not_started" || t.sale_state === "ended") return SALE_STATE[t.sale_state];
  if (t.remaining === 0) return "Sold out";
  return t.low_stock ? `Almost sold out (${t.remaining} left)` : `${t.remaining} left`;
}

const onSale = (t) => t.sale_state === "on_sale" && t.remaining > 0;

/**
 * The order being placed. Its key is kept while the same order is retried,
 * so a retry after a lost answer gets the first order back instead of
 * making a second.
 */
let attempt = null;

/** Places the order and opens its page; or returns the problem. */
async function placeOrder(eventId, order, progress = () => {}) {
  const json = JSON.stringify(order);
  if (attempt?.eventId !== eventId || attempt.json !== json) attempt = { eventId, json, key: newKey() };
  for (let n = 0; ; n++) {
    const { status, body, headers } = await api("POST", `/v1/events/${eventId}/orders`, order, { "idempotency-key": attempt.key });
    if (status === 202) {
      attempt = null;
      return navigate(`/orders/${body.id}`);
    }
    if (![0, 502, 503, 504].includes(status)) {
      if (status !== 401) attempt = null;
      return { status, ...(body ?? { detail: "The order could not be placed." }) };
    }
    if (n === 4) return { status, detail: "Boxoffice cannot be reached right now. Press Buy again: your order will not be placed twice." };
    const wait = Math.min(Number(headers.get("retry-after")) * 1000 || 1000 * 2 ** n, 8000);
    progress(`Connection trouble: trying again in ${Math.ceil(wait / 1000)} s…`);
    await sleep(wait);
  }
}

/**
 * The seats of one tier that can be put in other people's names: each is a
 * fieldset with a name and an email, kept while quantities change.
 */
function holderSeat(tier, seat) {
  const id = `holder-${tier.id}-${seat}`;
  const field = (name, label, type) => {
    const error = h("p", { class: "field-error", id: `${id}-${name}-error` });
    const input = h("input", { id: `${id}-${name}`, name, type, autocomplete: "off", "aria-describedby": `${id}-${name}-error` });
    return { input, error, el: h("div", {}, h("label", { for: input.id }, label), input, error) };
  };
  const name = field("name", "Name", "text");
  const email = field("email", "Email", "email");
  return { name, email, el: h("fieldset", { class: "holder" }, h("legend", {}, `${tier.name}, ticket ${seat + 1}`), name.el, email.el) };
}

/** Where a buyer types the access code of hidden tiers, and hears what it opened. */
function accessForm(e, access) {
  const input = h("input", { id: "access-code", name: "code", autocomplete: "off", value: access ?? "", "aria-describedby": "access-note" });
  const opened = e.tiers.filter((t) => t.hidden).length;
  const note = access
    ? h("p", { id: "access-note", class: opened ? "ok" : "bad", "aria-live": "polite" },
      opened ? `Code ${access} opens ${opened} ticket tier${opened === 1 ? "" : "s"}.` : `Code ${access} opens no tickets of this event.`)
    : h("p", { id: "access-note", class: "muted" }, "Some tickets are offered only to holders of a code.");
  const el = h("form", { class: "code-row", "aria-label": "Access code" },
    h("label", { for: "access-code" }, "Access code"),
    h("div", { class: "inline" }, input, h("button", { type: "submit", class: "secondary", id: "apply-access" }, "Show tickets")),
    note);
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = input.value.trim();
    navigate(`/events/${e.id}${code ? `?code=${encodeURIComponent(code)}` : ""}`);
  });
  return el;
}

async function eventPage(id, params = new URLSearchParams()) {
  // A link with `?code=` (or the access code typed below) shows the hidden
  // tiers that carry it.
  const access = params.get("code")?.trim() || null;
  const query = access ? `?unlock_code=${encodeURIComponent(access)}` : "";
  const { status, body } = await api("GET", `/v1/events/${encodeURIComponent(id)}${query}`);
  if (status !== 200) return show("Event not found", h("p", {}, body?.detail ?? ""), h("a", { href: "/" }, "All events"));
  const e = body;
  const tiers = new Map();
  let discount = null;
  const summary = h("p", { id: "summary", "aria-live": "polite" });
  const problem = h("p", { role: "alert", id: "order-error" });
  const viewers = h("p", { id: "viewers", class: "muted", "aria-live": "polite" });

  const rows = e.tiers.map((t) => {
    const input = h("input", {
      type: "number", id: `qty-${t.id}`, name: `qty-${t.id}`, class: "qty", inputmode: "numeric",
      min: 0, max: Math.min(t.max_per_order, t.remaining), value: 0,
      "aria-label": `Tickets: ${t.name}`, disabled: !onSale(t), oninput: () => { drawSummary(); drawHolders(); },
    });
    const row = { tier: t, input, left: h("td", { id: `left-${t.id}` }, availability(t)), price: h("td", {}) };
    tiers.set(t.id, row);
    return h("tr", {},
      h("th", { scope: "row" }, t.name, t.description ? h("span", { class: "muted block" }, t.description) : null),
      row.price, row.left, h("td", {}, input));
  });

  /** A percentage code shows each tier's price with it; a fixed amount comes off the order. */
  const drawPrices = () => {
    for (const { tier, price } of tiers.values()) {
      const with_ = discount?.percent_off != null ? discount.tiers.find((p) => p.tier_id === tier.id) : null;
      price.replaceChildren(...(with_ && with_.discounted_price_minor < tier.price_minor
        ? [h("s", {}, money(tier.price_minor, tier.currency)), " ", h("strong", {}, money(with_.discounted_price_minor, tier.currency))]
        : [money(tier.price_minor, tier.currency)]));
    }
  };
  const drawSummary = () => {
    let count = 0, total = 0;
    for (const { tier, input } of tiers.values()) {
      const n = Math.max(0, Number.parseInt(input.value, 10) || 0);
      const price = discount?.percent_off != null
        ? discount.tiers.find((p) => p.tier_id === tier.id)?.discounted_price_minor ?? tier.price_minor
        : tier.price_minor;
      count += n;
      total += n * price;
    }
    const off = discount?.amount_off_minor != null && count ? ` before ${money(discount.amount_off_minor, e.currency)} off` : "";
    summary.textContent = count ? `${count} ticket${count === 1 ? "" : "s"}: ${money(total, e.currency)}${off}` : "Choose how many tickets you want.";
  };

  // Seats in other people's names; a seat left blank is the buyer's.
  const seats = new Map();
  const seatsOf = (tier, input) => {
    const n = Math.min(Math.max(0, Number.parseInt(input.value, 10) || 0), tier.max_per_order);
    return Array.from({ length: n }, (_, seat) => {
      const key = `${tier.id}:${seat}`;
      if (!seats.has(key)) seats.set(key, holderSeat(tier, seat));
      return seats.get(key);
    });
  };
  const holderList = h("div", {});
  const holders = h("details", { id: "holders" },
    h("summary", {}, "Put tickets in other people's names"),
    h("p", { class: "muted" }, "Each ticket carries its holder's name. One left blank is in yours."),
    holderList);
  const drawHolders = () => {
    const all = [...tiers.values()].flatMap(({ tier, input }) => seatsOf(tier, input));
    holderList.replaceChildren(...all.map((s) => s.el));
    holders.hidden = all.length === 0;
  };

  const code = h("input", { id: "discount-code", name: "discount_code", autocomplete: "off", "aria-describedby": "discount-note" });
  const codeNote = h("p", { id: "discount-note", "aria-live": "polite" });
  const checkCode = async () => {
    discount = null;
    codeNote.className = "";
    codeNote.textContent = "";
    const value = code.value.trim();
    if (value) {
      const answer = await api("GET", `/v1/events/${e.id}/discounts/${encodeURIComponent(value)}`);
      if (answer.status === 200) {
        discount = answer.body;
        const what = discount.percent_off != null ? `${discount.percent_off}% off` : `${money(discount.amount_off_minor, e.currency)} off the order`;
        codeNote.className = "ok";
        codeNote.textContent = `Code ${discount.code}: ${what}.`;
      } else {
        codeNote.className = "bad";
        codeNote.textContent = answer.status === 404 ? "This code does not exist for this event." : answer.body?.detail ?? "The code could not be checked.";
      }
    }
    drawPrices();
    drawSummary();
  };

  const buy = h("button", { type: "submit", id: "buy" }, "Buy tickets");
  const buyForm = h("form", { novalidate: true, "aria-label": "Buy tickets" },
    h("table", {}, h("caption", { class: "muted" }, "Tickets"),
      h("thead", {}, h("tr", {}, ...["Tier", "Price", "Availability", "Quantity"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)),
    h("div", { class: "code-row" },
      h("label", { for: "discount-code" }, "Discount code"),
      h("div", { class: "inline" }, code, h("button", { type: "button", class: "secondary", id: "apply-code", onclick: checkCode }, "Apply")),
      codeNote),
    holders, summary, buy, problem);

  buyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    for (const { name, email } of seats.values()) {
      for (const f of [name, email]) {
        f.error.textContent = "";
        f.input.removeAttribute("aria-invalid");
      }
    }
    // `named[i][j]` is the seat whose holder went out as items[i].attendees[j],
    // so the API's field errors land next to the right inputs.
    const named = [];
    const items = [...tiers.values()]
      .map(({ tier, input }) => {
        const filled = seatsOf(tier, input).filter((s) => s.name.input.value.trim() || s.email.input.value.trim());
        const attendees = filled.map((s) => ({ name: s.name.input.value.trim(), email: s.email.input.value.trim() }));
        return { tier_id: tier.id, quantity: Number.parseInt(input.value, 10) || 0, filled, attendees };
      })
      .filter((i) => i.quantity > 0)
      .map(({ filled, attendees, ...item }) => {
        named.push(filled);
        return attendees.length ? { ...item, attendees } : item;
      });
    if (!items.length) {
      problem.textContent = "Choose at least one ticket.";
      return;
    }
    const order = { items, ...(discount ? { discount_code: discount.code } : {}), ...(access ? { unlock_code: access } : {}) };
    const place = async () => {
      const failed = await placeOrder(e.id, order, (note) => { problem.textContent = note; });
      if (failed?.status === 401) return account(place, "sign-in", "Sign in to buy tickets");
      if (failed) {
        if (!main.contains(buyForm)) await eventPage(e.id, params);
        for (const { field, message } of failed.errors ?? []) {
          const [, i, j, part] = field.match(/^items\[(\d+)\]\.attendees\[(\d+)\]\.(name|email)$/) ?? [];
          const target = named[i]?.[j]?.[part];
          if (!target) continue;
          holders.open = true;
          target.error.textContent = message;
          target.input.setAttribute("aria-invalid", "true");
        }
        document.getElementById("order-error").textContent = failed.detail;
      }
    };
    buy.disabled = true;
    try {
      if (!session.access) return account(place, "sign-in", "Sign in to buy tickets");
      await place();
    } finally {
      buy.disabled = false;
    }
  });

  const canBuy = e.status === "published" && e.tiers.length > 0;
  show(e.title,
    h("p", { class: "muted" }, `${when(e.starts_at, e.timezone)} · ${e.venue_name}, ${e.address}, ${e.city}`),
    e.images.length ? h("img", { class: "cover", id: "cover", src: e.images[0].url, alt: "", width: e.images[0].width, height: e.images[0].height }) : null,
    e.status === "cancelled" ? h("p", { role: "alert" }, `This event is cancelled. ${e.cancel_message ?? ""}`) : null,
    h("p", {}, e.description),
    e.refundable_until ? h("p", { class: "muted" }, `Refunds until ${when(e.refundable_until, e.timezone)}.`) : h("p", { class: "muted" }, "Tickets are not refundable."),
    h("p", {}, h("a", { href: `/v1/events/${e.id}/calendar.ics`, download: "event.ics" }, "Add to calendar")),
    viewers,
    canBuy ? buyForm : h("p", {}, "No tickets are on sale."),
    accessForm(e, access));
  drawPrices();
  drawSummary();
  drawHolders();

  // Stock as others buy, and how many are looking.
  const live = new EventSource(`/v1/events/${e.id}/live`);
  session.page.signal.addEventListener("abort", () => live.close());
  live.addEventListener("availability", (message) => {
    for (const stock of JSON.parse(message.data).tiers) {
      const row = tiers.get(stock.tier_id);
      if (!row) continue;
      const t = row.tier;
      t.remaining = stock.remaining;
      t.low_stock = stock.low_stock;
      if (t.sale_state === "on_sale" || t.sale_state === "sold_out") t.sale_state = t.remaining === 0 ? "sold_out" : "on_sale";
      row.left.textContent = availability(t);
      row.input.max = Math.min(t.max_per_order, t.remaining);
      row.input.disabled = !onSale(t);
    }
  });
  live.addEventListener("viewers", (message) => {
    const { count } = JSON.parse(message.data);
    viewers.textContent = count > 1 ? `${count} people are looking at this event.` : "";
  });
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

const ORDER_STATUS = {
  pending: "Reserving your seats…",
  awaiting_payment: "Seats held: awaiting payment",
  paid: "Paid",
  cancelled: "Cancelled",
  expired: "Expired: the seats were released",
  rejected: "Not placed",
  refunded: "Refunded",
  partially_refunded: "Partly refunded",
};
const TICKET_STATUS = { valid: "Valid", checked_in: "Checked in", void: "Void", voided: "Void" };
const REFUND_STATUS = { requested: "Requested", processing: "In progress", succeeded: "Refunded", failed: "Failed" };

/** A ticket's QR image, fetched with the token (it is a credential). */
async function loadQr(ticket, img) {
  const response = await fetch(ticket.qr_url, { headers: { authorization: `Bearer ${session.access}` } });
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  session.page.signal.addEventListener("abort", () => URL.revokeObjectURL(url));
  img.src = url;
}

function ticketCard(ticket) {
  const img = h("img", { class: "qr", id: `qr-${ticket.id}`, width: 160, height: 160, alt: `QR code of ticket ${ticket.code}` });
  if (ticket.status === "valid" || ticket.status === "checked_in") loadQr(ticket, img);
  return h("li", { class: "ticket", id: `ticket-${ticket.id}` },
    img,
    h("div", {},
      h("p", { class: "code" }, ticket.code),
      h("p", {}, `${ticket.tier_name} · ${ticket.attendee_name}`),
      h("p", { class: "muted" }, TICKET_STATUS[ticket.status] ?? ticket.status)));
}

async function orderPage(id) {
  const load = () => api("GET", `/v1/orders/${encodeURIComponent(id)}`);
  const first = await load();
  if (first.status === 401) return account(() => orderPage(id));
  if (first.status !== 200) return show("Order not found", h("p", {}, first.body?.detail ?? ""), h("a", { href: "/" }, "All events"));
  let order = first.body;
  const { body: e } = await api("GET", `/v1/events/${order.event_id}`);
  const statusLine = h("p", { id: "order-status", class: "status", "aria-live": "polite" });
  const details = h("div", {});
  let refundKey = null;

  const draw = async () => {
    const o = order;
    statusLine.textContent = ORDER_STATUS[o.status] ?? o.status;
    const money_ = (minor) => money(minor, o.currency);
    const parts = [
      o.reason ? h("p", { class: "muted", id: "order-reason" }, o.reason) : null,
      h("ul", {}, o.items.map((i) => h("li", {}, `${i.quantity} × ${i.tier_name} at ${money_(i.unit_price_minor)}`))),
      h("dl", { class: "totals" },
        o.discount_minor ? [h("dt", {}, "Subtotal"), h("dd", {}, money_(o.subtotal_minor)), h("dt", {}, "Discount"), h("dd", {}, `−${money_(o.discount_minor)}`)] : null,
        h("dt", {}, "Total"), h("dd", { id: "order-total" }, money_(o.total_minor)),
        o.refunded_minor ? [h("dt", {}, "Refunded"), h("dd", {}, money_(o.refunded_minor))] : null),
    ];
    const unpaid = o.status === "pending" || o.status === "awaiting_payment";
    if (o.status === "awaiting_payment" && o.checkout_url) {
      parts.push(
        o.reserved_until ? h("p", {}, `Your seats are held until ${when(o.reserved_until, e?.timezone)}.`) : null,
        h("p", {}, h("a", { href: o.checkout_url, class: "button", id: "pay" }, `Pay ${money_(o.total_minor)}`)));
    }
    if (unpaid) {
      const problem = h("p", { role: "alert" });
      parts.push(h("button", {
        type: "button", class: "secondary", id: "cancel-order",
        onclick: async () => {
          const { status, body } = await api("POST", `/v1/orders/${o.id}/cancel`);
          if (status === 200) { order = body; await draw(); } else problem.textContent = body?.detail ?? "The order could not be cancelled.";
        },
      }, "Cancel order"), problem);
    }
    if (["paid", "partially_refunded", "refunded"].includes(o.status)) {
      const { status, body: tickets } = await api("GET", `/v1/orders/${o.id}/tickets`);
      if (status === 200 && tickets.length) {
        parts.push(h("h2", {}, "Your tickets"), h("ul", { class: "tickets" }, tickets.map(ticketCard)));
      } else if (o.status === "paid") {
        parts.push(h("p", { class: "muted" }, "Your tickets are being issued…"));
      }
      parts.push(h("p", {}, h("a", { href: `/v1/events/${o.event_id}/calendar.ics`, download: "event.ics", id: "calendar" }, "Add to calendar")));
    }
    const refundable = e?.refundable_until && Date.now() < Date.parse(e.refundable_until)
      && (o.status === "paid" || o.status === "partially_refunded")
      && !o.refunds.some((r) => r.status === "requested" || r.status === "processing");
    if (refundable) {
      const problem = h("p", { role: "alert" });
      const confirm = h("div", { hidden: true, id: "refund-confirm" },
        h("p", {}, `Refund the order: ${money_(o.total_minor - o.refunded_minor)} back to how you paid, and its tickets voided?`),
        h("button", {
          type: "button", id: "refund-yes",
          onclick: async () => {
            refundKey ??= newKey();
            const { status, body } = await api("POST", `/v1/orders/${o.id}/refund`, {}, { "idempotency-key": refundKey });
            if (status !== 202 && status !== 200) { problem.textContent = body?.detail ?? "The refund could not be asked for."; return; }
            refundKey = null;
            const again = await load();
            if (again.status === 200) { order = again.body; await draw(); }
          },
        }, "Yes, refund"),
        " ",
        h("button", { type: "button", class: "secondary", onclick: () => { confirm.hidden = true; } }, "Keep my tickets"));
      parts.push(h("h2", {}, "Refund"),
        h("p", { class: "muted" }, `Refunds are possible until ${when(e.refundable_until, e.timezone)}.`),
        h("button", { type: "button", class: "secondary", id: "refund", onclick: () => { confirm.hidden = false; } }, "Ask for a refund"),
        confirm, problem);
    }
    if (o.refunds.length) {
      parts.push(h("h2", {}, "Refunds"), h("ul", { id: "refunds" }, o.refunds.map((r) =>
        h("li", {}, `${money_(r.amount_minor)}: ${REFUND_STATUS[r.status] ?? r.status}${r.reason ? ` (${r.reason})` : ""}`))));
    }
    details.replaceChildren(...parts);
  };

  show("Your order",
    e ? h("p", {}, h("a", { href: `/events/${e.id}` }, e.title), ` · ${when(e.starts_at, e.timezone)}`) : null,
    statusLine, details);
  await draw();
  // The order as it is decided, paid or refunded, without a reload.
  follow(`/v1/orders/${order.id}/live`, async (message) => {
    const same = message.type === "order.status" && message.status === order.status
      && (message.checkout_url ?? null) === (order.checkout_url ?? null);
    if (same) return;
    const again = await load();
    if (again.status === 200) {
      order = again.body;
      await draw();
    }
  });
}

/** Titles of the events of `ids`, one request each (a page holds few). */
async function eventsById(ids) {
  const unique = [...new Set(ids)];
  const answers = await Promise.all(unique.map((id) => api("GET", `/v1/events/${id}`)));
  return new Map(answers.filter((a) => a.status === 200).map((a) => [a.body.id, a.body]));
}

async function myOrders() {
  const { status, body } = await api("GET", "/v1/users/me/orders?limit=50");
  if (status === 401) return account(myOrders);
  if (status !== 200) return show("My orders", h("p", { role: "alert" }, body?.detail ?? "Your orders could not be loaded."));
  const events = await eventsById(body.items.map((o) => o.event_id));
  show("My orders", body.items.length
    ? h("ul", { class: "events", id: "orders" }, body.items.map((o) => {
        const e = events.get(o.event_id);
        return h("li", {},
          h("h2", {}, h("a", { href: `/orders/${o.id}` }, e?.title ?? "Order")),
          h("p", { class: "muted" }, `${when(o.created_at)} · ${money(o.total_minor, o.currency)}`),
          h("p", {}, ORDER_STATUS[o.status] ?? o.status));
      }))
    : h("p", {}, "No orders yet. ", h("a", { href: "/" }, "Find an event")));
}

async function myTickets() {
  const { status, body } = await api("GET", "/v1/users/me/tickets?limit=100");
  if (status === 401) return account(myTickets);
  if (status !== 200) return show("My tickets", h("p", { role: "alert" }, body?.detail ?? "Your tickets could not be loaded."));
  const events = await eventsById(body.items.map((t) => t.event_id));
  const byEvent = Map.groupBy(body.items, (t) => t.event_id);
  show("My tickets", body.items.length
    ? [...byEvent].map(([eventId, tickets]) => {
        const e = events.get(eventId);
        return h("section", {},
          h("h2", {}, e ? h("a", { href: `/events/${e.id}` }, e.title) : "Event"),
          e ? h("p", { class: "muted" }, when(e.starts_at, e.timezone)) : null,
          h("ul", { class: "tickets" }, tickets.map(ticketCard)));
      })
    : h("p", {}, "No tickets yet. ", h("a", { href: "/" }, "Find an event")));
}

function notFound() {
  show("Page not found", h("p", {}, "There is nothing at this address."), h("a", { href: "/" }, "All events"));
}

/** The page at `pathname`, or null where the app has none. */
function pageFor(pathname, params) {
  const event = pathname.match(/^\/events\/([^/]+)$/);
  const order = pathname.match(/^\/orders\/([^/]+)$/);
  const next = () => navigate(localPath(params.get("next")));
  if (pathname === "/") return () => home(params);
  if (pathname.startsWith("/console")) return consolePage(pathname, params);
  if (event) return () => eventPage(event[1], params);
  if (order) return () => orderPage(order[1]);
  return {
    "/verify-email": () => verifyEmail(params),
    "/forgot-password": forgotPassword,
    "/reset-password": () => resetPassword(params),
    "/sign-in": () => account(next, "sign-in"),
    "/register": () => account(next, "register"),
    "/orders": myOrders,
    "/tickets": myTickets,
  }[pathname] ?? null;
}

function route() {
  session.page.abort();
  session.page = new AbortController();
  const { pathname, search } = window.location;
  renderAccount();
  return (pageFor(pathname, new URLSearchParams(search)) ?? notFound)();
}

// Links between the app's pages change the page without a reload (the
// access token in memory survives).
document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href);
  if (url.origin !== window.location.origin || !pageFor(url.pathname, url.searchParams)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", route);

// A page that fails says so instead of standing half drawn.
window.addEventListener("unhandledrejection", (event) => {
  main.append(h("p", { role: "alert" }, `Something went wrong: ${event.reason?.message ?? event.reason}`));
});

// Signs back in from the refresh cookie, if this browser signed in here.
if (maybeSignedIn()) await refresh();
route();
