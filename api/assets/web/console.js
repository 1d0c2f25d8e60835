// Boxoffice organizer console: an organizer's events, their details, tiers,
// discount codes, publishing, sales, attendees, check-in at the door and
// cancellation. Like the storefront, a client of the public API only.

import {
  account, api, download, form, fromLocalInput, h, minorDigits, money, navigate, session,
  show, toLocalInput, when,
} from "/app/lib.js";

const EVENT_STATUS = { draft: "Draft", published: "On sale", cancelled: "Cancelled", ended: "Ended" };

/** The console page at `pathname`, or null. */
export function consolePage(pathname, params) {
  const event = pathname.match(/^\/console\/events\/([^/]+)$/);
  const attendees = pathname.match(/^\/console\/events\/([^/]+)\/attendees$/);
  const door = pathname.match(/^\/console\/events\/([^/]+)\/check-in$/);
  if (pathname === "/console") return guarded(myEvents);
  if (pathname === "/console/events/new") return guarded(() => eventForm(null));
  if (attendees) return guarded(() => attendeesPage(attendees[1], params));
  if (door) return guarded(() => checkInPage(door[1]));
  if (event) return guarded(() => eventConsole(event[1]));
  return null;
}

/** Signed-in organizers (and admins) only; others are told why. */
function guarded(page) {
  const open = async () => {
    if (!session.access) return account(open, "sign-in", "Sign in to the console");
    if (session.me && !["organizer", "admin"].includes(session.me.role)) {
      return show("Organizers only", h("p", {}, "The console is for organizers. Ask an admin to make your account an organizer's."));
    }
    return page();
  };
  return open;
}

/** A decimal amount typed in major units, in minor units (or NaN). */
function toMinor(text, currency) {
  const value = Number(String(text).trim().replace(",", "."));
  return text === "" || Number.isNaN(value) ? Number.NaN : Math.round(value * 10 ** minorDigits(currency));
}

const optionalNumber = (text) => (text.trim() === "" ? null : Number(text));

async function myEvents() {
  const [list, stats] = await Promise.all([
    api("GET", "/v1/organizer/events?limit=100"),
    api("GET", "/v1/organizer/stats"),
  ]);
  if (list.status === 401) return account(myEvents);
  if (list.status !== 200) return show("My events", h("p", { role: "alert" }, list.body?.detail ?? "Your events could not be loaded."));
  const sales = new Map((stats.body?.events ?? []).map((s) => [s.event_id, s]));
  const admin = session.me?.role === "admin";
  show("My events",
    h("p", {}, h("a", { href: "/console/events/new", class: "button", id: "new-event" }, "New event")),
    admin ? h("p", {}, h("a", { href: "/ops/board" }, "Ops board"), " · ", h("a", { href: "/docs" }, "API documentation")) : null,
    list.body.items.length
      ? h("table", { id: "my-events" },
          h("thead", {}, h("tr", {}, ...["Event", "Starts", "Status", "Sold", "Net"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, list.body.items.map((e) => {
            const s = sales.get(e.id);
            return h("tr", {},
              h("th", { scope: "row" }, h("a", { href: `/console/events/${e.id}` }, e.title)),
              h("td", {}, when(e.starts_at, e.timezone)),
              h("td", {}, EVENT_STATUS[e.status] ?? e.status),
              h("td", {}, String(s?.sold ?? 0)),
              h("td", {}, money(s?.net_minor ?? 0, e.currency)));
          })))
      : h("p", {}, "No events yet."));
}

/** Create (`e` null) or edit an event's details. */
function detailsForm(e) {
  const zone = e?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  return form({
    prefix: "event",
    label: "Event details",
    fields: [
      { name: "title", label: "Title", value: e?.title },
      { name: "description", label: "Description", textarea: true, value: e?.description },
      { name: "category", label: "Category", value: e?.category ?? "music", hint: "For example music, theatre, comedy or conference." },
      { name: "venue_name", label: "Venue", value: e?.venue_name },
      { name: "address", label: "Address", value: e?.address },
      { name: "city", label: "City", value: e?.city },
      { name: "country", label: "Country code", value: e?.country, hint: "Two letters, for example FR.", maxlength: 2 },
      { name: "latitude", label: "Latitude", required: false, inputmode: "decimal", value: e?.latitude },
      { name: "longitude", label: "Longitude", required: false, inputmode: "decimal", value: e?.longitude },
      { name: "timezone", label: "Time zone", value: zone, hint: "Times below are in this zone, for example Europe/Paris." },
      { name: "starts_at", label: "Starts", type: "datetime-local", value: e ? toLocalInput(e.starts_at, zone) : undefined },
      { name: "ends_at", label: "Ends", type: "datetime-local", value: e ? toLocalInput(e.ends_at, zone) : undefined },
      { name: "currency", label: "Currency", value: e?.currency ?? "EUR", maxlength: 3 },
      { name: "refund_until_hours", label: "Refunds until (hours before the start)", required: false, inputmode: "numeric", value: e?.refund_until_hours, hint: "Empty: no refunds on request." },
    ],
    submit: e ? "Save details" : "Create event",
    onsubmit: async (v) => {
      const body = {
        ...v,
        latitude: optionalNumber(v.latitude),
        longitude: optionalNumber(v.longitude),
        refund_until_hours: optionalNumber(v.refund_until_hours),
        starts_at: fromLocalInput(v.starts_at, v.timezone),
        ends_at: fromLocalInput(v.ends_at, v.timezone),
        country: v.country.toUpperCase(),
        currency: v.currency.toUpperCase(),
      };
      const { status, body: answer } = e
        ? await api("PATCH", `/v1/events/${e.id}`, body)
        : await api("POST", "/v1/events", body);
      if (status !== 200 && status !== 201) return answer;
      if (!e) return navigate(`/console/events/${answer.id}`);
      return "Saved.";
    },
  });
}

function eventForm() {
  show("New event", detailsForm(null));
}

function tierForm(e, onadded) {
  return form({
    prefix: "tier",
    label: "Add a tier",
    fields: [
      { name: "name", label: "Tier name" },
      { name: "price", label: `Price (${e.currency})`, inputmode: "decimal" },
      { name: "quantity", label: "Tickets", inputmode: "numeric" },
    ],
    submit: "Add tier",
    onsubmit: async ({ name, price, quantity }) => {
      const price_minor = toMinor(price, e.currency);
      if (Number.isNaN(price_minor)) return { errors: [{ field: "price", message: "must be an amount, for example 25.00" }] };
      const { status, body } = await api("POST", `/v1/events/${e.id}/tiers`, {
        name, price_minor, quantity: Number.parseInt(quantity, 10) || 0,
      });
      if (status !== 201) return body;
      await onadded();
    },
  });
}

/** Sales over time as bars, with a text alternative. */
function salesChart(buckets, currency) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, ...children) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    el.append(...children);
    return el;
  };
  if (!buckets.length) return h("p", { class: "muted" }, "No sales yet.");
  const width = 600, height = 160, gap = 2;
  const max = Math.max(...buckets.map((b) => b.tickets), 1);
  const bar = (width - gap * buckets.length) / buckets.length;
  const total = buckets.reduce((n, b) => n + b.tickets, 0);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-labelledby": "chart-title" },
    svg("title", { id: "chart-title" }, `Tickets sold per period: ${total} in ${buckets.length} periods`),
    ...buckets.map((b, i) => {
      const tall = Math.max(1, (b.tickets / max) * (height - 10));
      return svg("rect", { x: i * (bar + gap), y: height - tall, width: bar, height: tall, class: "bar" },
        svg("title", {}, `${b.starts}: ${b.tickets} tickets, ${money(b.amount_minor, currency)}`));
    }));
  return h("figure", {}, chart, h("figcaption", { class: "muted" }, `Tickets sold per period (${total} in all)`));
}

async function eventConsole(id) {
  const { status, body: e } = await api("GET", `/v1/events/${encodeURIComponent(id)}`);
  if (status === 401) return account(() => eventConsole(id));
  if (status !== 200) return show("Event not found", h("p", {}, e?.detail ?? ""), h("a", { href: "/console" }, "My events"));
  const reload = () => eventConsole(id);
  const [stats, codes] = await Promise.all([
    api("GET", `/v1/events/${e.id}/stats`),
    api("GET", `/v1/events/${e.id}/discounts`),
  ]);
  const problem = h("p", { role: "alert", id: "console-error" });

  const publish = e.status === "draft"
    ? h("button", {
        type: "button", id: "publish",
        onclick: async () => {
          const answer = await api("POST", `/v1/events/${e.id}/publish`, {});
          if (answer.status !== 200) problem.textContent = answer.body?.detail ?? "The event could not be published.";
          else await reload();
        },
      }, "Publish")
    : null;

  const tierRows = e.tiers.map((t) => h("tr", {},
    h("th", { scope: "row" }, t.name),
    h("td", {}, money(t.price_minor, t.currency)),
    h("td", {}, String(t.quantity)),
    h("td", {}, String(t.sold ?? 0)),
    h("td", {}, String(t.held ?? 0)),
    h("td", {}, String(t.remaining))));

  const codeForm = form({
    prefix: "code",
    label: "New discount code",
    fields: [
      { name: "code", label: "Code" },
      { name: "percent_off", label: "Percent off", inputmode: "decimal" },
    ],
    submit: "Create code",
    onsubmit: async ({ code, percent_off }) => {
      const answer = await api("POST", `/v1/events/${e.id}/discounts`, { code, percent_off: Number(percent_off) });
      if (answer.status !== 201) return answer.body;
      await reload();
    },
  });

  const cancel = e.status === "published"
    ? form({
        prefix: "cancel",
        label: "Cancel the event",
        fields: [{ name: "message", label: "Message to the attendees", textarea: true, required: false }],
        submit: "Cancel the event and refund everyone",
        onsubmit: async ({ message }) => {
          const answer = await api("POST", `/v1/events/${e.id}/cancel`, { message });
          if (answer.status !== 202 && answer.status !== 200) return answer.body;
          await reload();
        },
      })
    : null;

  const s = stats.status === 200 ? stats.body : null;
  show(e.title,
    h("p", { id: "event-status", class: "status" }, EVENT_STATUS[e.status] ?? e.status),
    h("p", {}, `${when(e.starts_at, e.timezone)} · ${e.venue_name}, ${e.city}`),
    h("p", { class: "inline-links" },
      e.status !== "draft" ? h("a", { href: `/events/${e.id}`, id: "storefront" }, "View in the storefront") : null,
      h("a", { href: `/console/events/${e.id}/attendees` }, "Attendees"),
      h("a", { href: `/console/events/${e.id}/check-in` }, "Check-in")),
    publish, problem,
    h("h2", {}, "Tiers"),
    e.tiers.length
      ? h("table", { id: "tiers" },
          h("thead", {}, h("tr", {}, ...["Tier", "Price", "Tickets", "Sold", "Held", "Left"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, tierRows))
      : h("p", { class: "muted" }, "No tiers yet: add one to sell tickets."),
    e.status === "draft" || e.status === "published" ? tierForm(e, reload) : null,
    s ? [
      h("h2", {}, "Sales"),
      h("dl", { class: "totals", id: "money" },
        h("dt", {}, "Collected"), h("dd", {}, money(s.money.collected_minor, s.currency)),
        h("dt", {}, "Refunded"), h("dd", {}, money(s.money.refunded_minor, s.currency)),
        h("dt", {}, "Fees"), h("dd", {}, money(s.money.fees_minor, s.currency)),
        h("dt", {}, "Net"), h("dd", {}, money(s.money.net_minor, s.currency))),
      salesChart(s.sales, s.currency),
    ] : null,
    h("h2", {}, "Discount codes"),
    (codes.body ?? []).length
      ? h("ul", { id: "codes" }, codes.body.map((c) => h("li", {},
          `${c.code}: ${c.percent_off != null ? `${c.percent_off}%` : money(c.amount_off_minor, e.currency)} off, used ${c.redemptions} times`)))
      : h("p", { class: "muted" }, "No codes."),
    codeForm,
    h("h2", {}, "Details"),
    detailsForm(e),
    cancel ? [h("h2", {}, "Cancel the event"), cancel] : null);
}

async function attendeesPage(id, params) {
  const q = params.get("q") ?? "";
  const { status, body } = await api("GET", `/v1/events/${encodeURIComponent(id)}/attendees?limit=100${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  if (status === 401) return account(() => attendeesPage(id, params));
  if (status !== 200) return show("Attendees", h("p", { role: "alert" }, body?.detail ?? "The attendees could not be loaded."));
  const search = h("input", { id: "attendee-q", type: "search", name: "q", value: q });
  const problem = h("p", { role: "alert" });
  show("Attendees",
    h("p", {}, h("a", { href: `/console/events/${id}` }, "Back to the event")),
    h("form", { role: "search", onsubmit: (ev) => { ev.preventDefault(); navigate(`/console/events/${id}/attendees?q=${encodeURIComponent(search.value)}`); } },
      h("label", { for: "attendee-q" }, "Search by name or email"), search, h("button", { type: "submit" }, "Search")),
    h("p", {}, h("button", {
      type: "button", class: "secondary", id: "csv",
      onclick: async () => {
        if (!await download(`/v1/events/${id}/attendees`, "text/csv", "attendees.csv")) problem.textContent = "The list could not be downloaded.";
      },
    }, "Download all as CSV")),
    problem,
    h("table", { id: "attendees" },
      h("thead", {}, h("tr", {}, ...["Name", "Email", "Tier", "Status"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, body.items.map((a) => h("tr", {},
        h("th", { scope: "row" }, a.attendee_name), h("td", {}, a.attendee_email), h("td", {}, a.tier_name),
        h("td", {}, a.checked_in_at ? "Checked in" : a.status))))));
}

/**
 * The door: a typed ticket code or QR payload, or the device's camera where
 * the browser can read QR codes (`BarcodeDetector`).
 */
async function checkInPage(id) {
  const { status, body: e } = await api("GET", `/v1/events/${encodeURIComponent(id)}`);
  if (status !== 200) return show("Event not found", h("p", {}, e?.detail ?? ""));
  const log = h("ol", { id: "scans", reversed: true, "aria-live": "polite" });
  const scan = async (code) => {
    const { status, body } = await api("POST", `/v1/events/${e.id}/check-ins`, { code, device: "web console" });
    log.prepend(status === 201
      ? h("li", { class: "ok" }, `Admitted: ${body.attendee_name} (${body.tier_name})`)
      : h("li", { class: "bad" }, `Refused: ${body?.detail ?? status}`));
  };
  const codeForm = form({
    prefix: "scan",
    label: "Check a ticket in",
    fields: [{ name: "code", label: "Ticket code or QR payload", autocomplete: "off" }],
    submit: "Check in",
    onsubmit: async ({ code }) => {
      await scan(code.trim());
      document.getElementById("scan-code").value = "";
      document.getElementById("scan-code").focus();
    },
  });
  const video = h("video", { id: "camera", muted: true, playsinline: true, hidden: true });
  const camera = "BarcodeDetector" in window && navigator.mediaDevices
    ? h("button", {
        type: "button", class: "secondary", id: "start-camera",
        onclick: async () => {
          const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
          session.page.signal.addEventListener("abort", () => stream.getTracks().forEach((t) => t.stop()));
          video.srcObject = stream;
          video.hidden = false;
          await video.play();
          const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
          let last = null;
          while (!session.page.signal.aborted) {
            const [found] = await detector.detect(video).catch(() => []);
            if (found && found.rawValue !== last) {
              last = found.rawValue;
              await scan(found.rawValue);
            }
            await new Promise((r) => setTimeout(r, 250));
          }
        },
      }, "Scan with the camera")
    : h("p", { class: "muted" }, "This browser cannot read QR codes from the camera: type the codes.");
  show(`Check-in: ${e.title}`, codeForm, camera, video, h("h2", {}, "Scans"), log);
}
