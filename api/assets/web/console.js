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
  if (pathname === "/console/payouts") return guarded(payoutsPage);
  if (pathname === "/console/webhooks") return guarded(webhooksPage);
  if (pathname === "/console/users") return guarded(() => usersPage(params));
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
    h("p", { class: "inline-links" },
      h("a", { href: "/console/payouts" }, "Payouts and balance"),
      h("a", { href: "/console/webhooks" }, "Webhooks"),
      admin ? [h("a", { href: "/console/users" }, "Users"), h("a", { href: "/ops/board" }, "Ops board"), h("a", { href: "/docs" }, "API documentation")] : null),
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

/** A tier with an access code is hidden: sold only to those given the code. */
const ACCESS_CODE_FIELD = {
  name: "unlock_code", label: "Access code", required: false, autocomplete: "off",
  hint: "Empty: on sale to everyone. A code hides the tier from all but those who have it.",
};
const hiddenBy = (code) => (code.trim() ? { hidden: true, unlock_code: code.trim() } : { hidden: false, unlock_code: null });

function tierForm(e, onadded) {
  return form({
    prefix: "tier",
    label: "Add a tier",
    fields: [
      { name: "name", label: "Tier name" },
      { name: "price", label: `Price (${e.currency})`, inputmode: "decimal" },
      { name: "quantity", label: "Tickets", inputmode: "numeric" },
      ACCESS_CODE_FIELD,
    ],
    submit: "Add tier",
    onsubmit: async ({ name, price, quantity, unlock_code }) => {
      const price_minor = toMinor(price, e.currency);
      if (Number.isNaN(price_minor)) return { errors: [{ field: "price", message: "must be an amount, for example 25.00" }] };
      const { status, body } = await api("POST", `/v1/events/${e.id}/tiers`, {
        name, price_minor, quantity: Number.parseInt(quantity, 10) || 0, ...hiddenBy(unlock_code),
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

  const editing = h("div", { id: "tier-editor" });
  const editTier = (t) => editing.replaceChildren(h("h3", {}, `Edit ${t.name}`), form({
    prefix: "edit-tier",
    label: `Edit ${t.name}`,
    fields: [
      { name: "name", label: "Tier name", value: t.name },
      { name: "price", label: `Price (${t.currency})`, inputmode: "decimal", value: (t.price_minor / 10 ** minorDigits(t.currency)).toFixed(minorDigits(t.currency)) },
      { name: "quantity", label: "Tickets", inputmode: "numeric", value: t.quantity, hint: "Not below those sold and held." },
      { name: "max_per_order", label: "Most per order", inputmode: "numeric", value: t.max_per_order },
      { ...ACCESS_CODE_FIELD, value: t.unlock_code ?? "" },
    ],
    submit: "Save tier",
    onsubmit: async ({ name, price, quantity, max_per_order, unlock_code }) => {
      const price_minor = toMinor(price, t.currency);
      if (Number.isNaN(price_minor)) return { errors: [{ field: "price", message: "must be an amount, for example 25.00" }] };
      const answer = await api("PATCH", `/v1/events/${e.id}/tiers/${t.id}`, {
        name, price_minor, quantity: Number.parseInt(quantity, 10), max_per_order: Number.parseInt(max_per_order, 10), ...hiddenBy(unlock_code),
      });
      if (answer.status !== 200) return answer.body;
      await reload();
    },
  }));
  const left = new Map();
  const tierRows = e.tiers.map((t) => {
    left.set(t.id, h("td", { id: `console-left-${t.id}` }, String(t.remaining)));
    return h("tr", {},
      h("th", { scope: "row" }, t.name, t.hidden ? h("span", { class: "muted block" }, `Hidden · code ${t.unlock_code}`) : null),
      h("td", {}, money(t.price_minor, t.currency)),
      h("td", {}, String(t.quantity)),
      h("td", {}, String(t.sold ?? 0)),
      h("td", {}, String(t.held ?? 0)),
      left.get(t.id),
      h("td", {}, h("button", { type: "button", class: "link", id: `edit-${t.id}`, onclick: () => editTier(t) }, `Edit ${t.name}`)));
  });

  const codeForm = form({
    prefix: "code",
    label: "New discount code",
    fields: [
      { name: "code", label: "Code" },
      { name: "percent_off", label: "Percent off", inputmode: "decimal", required: false, hint: "Either a percentage…" },
      { name: "amount_off_minor", label: `Amount off the order (${e.currency})`, inputmode: "decimal", required: false, hint: "…or a fixed amount." },
      { name: "max_redemptions", label: "Uses at most", inputmode: "numeric", required: false, hint: "Empty: no limit." },
    ],
    submit: "Create code",
    onsubmit: async ({ code, percent_off, amount_off_minor, max_redemptions }) => {
      const body = { code };
      if (percent_off.trim()) body.percent_off = Number(percent_off);
      if (amount_off_minor.trim()) {
        body.amount_off_minor = toMinor(amount_off_minor, e.currency);
        if (Number.isNaN(body.amount_off_minor)) return { errors: [{ field: "amount_off_minor", message: "must be an amount, for example 5.00" }] };
      }
      if (max_redemptions.trim()) body.max_redemptions = Number.parseInt(max_redemptions, 10);
      const answer = await api("POST", `/v1/events/${e.id}/discounts`, body);
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

  const [messages, staff] = await Promise.all([
    api("GET", `/v1/events/${e.id}/messages`),
    api("GET", `/v1/events/${e.id}/staff`),
  ]);
  const messageForm = form({
    prefix: "message",
    label: "Message the attendees",
    fields: [
      { name: "subject", label: "Subject" },
      { name: "body", label: "Message", textarea: true },
    ],
    submit: "Send to every ticket holder",
    onsubmit: async (v) => {
      const answer = await api("POST", `/v1/events/${e.id}/messages`, v);
      if (answer.status !== 202) return answer.body;
      await reload();
    },
  });
  const staffForm = form({
    prefix: "staff",
    label: "Add door staff",
    fields: [{ name: "email", label: "Their account's email", type: "email" }],
    submit: "Let them scan tickets",
    onsubmit: async (v) => {
      const answer = await api("POST", `/v1/events/${e.id}/staff`, v);
      if (answer.status !== 201) return answer.body;
      await reload();
    },
  });

  const imageProblem = h("p", { role: "alert" });
  const file = h("input", { type: "file", id: "image-file", accept: "image/png,image/jpeg,image/webp,image/gif" });
  const upload = h("button", {
    type: "button", class: "secondary", id: "upload-image",
    onclick: async () => {
      imageProblem.textContent = "";
      if (!file.files.length) { imageProblem.textContent = "Choose an image first."; return; }
      const body = new FormData();
      body.append("file", file.files[0]);
      // Multipart, so not through api(): the browser sets the boundary.
      const response = await fetch(`/v1/events/${e.id}/images`, { method: "POST", body, headers: { authorization: `Bearer ${session.access}` } });
      if (response.status !== 201) {
        const problem = await response.json().catch(() => ({}));
        imageProblem.textContent = problem.errors?.[0] ? `${problem.errors[0].field} ${problem.errors[0].message}` : problem.detail ?? "The image could not be uploaded.";
        return;
      }
      await reload();
    },
  }, "Upload");
  const images = h("ul", { class: "images", id: "images" }, e.images.map((img) => h("li", {},
    h("img", { src: img.url, alt: `Image of ${e.title}, ${img.width} by ${img.height}`, width: 120, height: Math.round((120 * img.height) / img.width) }),
    h("button", {
      type: "button", class: "link",
      onclick: async () => { await api("DELETE", `/v1/events/${e.id}/images/${img.id}`); await reload(); },
    }, "Delete"))));

  const sales = h("section", { "aria-label": "Sales", id: "sales" });
  const drawSales = (s) => sales.replaceChildren(
    h("dl", { class: "totals", id: "money" },
      h("dt", {}, "Collected"), h("dd", {}, money(s.money.collected_minor, s.currency)),
      h("dt", {}, "Refunded"), h("dd", {}, money(s.money.refunded_minor, s.currency)),
      h("dt", {}, "Fees"), h("dd", {}, money(s.money.fees_minor, s.currency)),
      h("dt", {}, "Net"), h("dd", {}, money(s.money.net_minor, s.currency))),
    salesChart(s.sales, s.currency));
  if (stats.status === 200) drawSales(stats.body);

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
          h("thead", {}, h("tr", {}, ...["Tier", "Price", "Tickets", "Sold", "Held", "Left", ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, tierRows))
      : h("p", { class: "muted" }, "No tiers yet: add one to sell tickets."),
    editing,
    e.status === "draft" || e.status === "published" ? tierForm(e, reload) : null,
    h("h2", {}, "Sales"),
    sales,
    h("h2", {}, "Discount codes"),
    (codes.body ?? []).length
      ? h("ul", { id: "codes" }, codes.body.map((c) => h("li", {},
          `${c.code}: ${c.percent_off != null ? `${c.percent_off}%` : money(c.amount_off_minor, e.currency)} off, used ${c.redemptions} times`)))
      : h("p", { class: "muted" }, "No codes."),
    codeForm,
    h("h2", {}, "Images"),
    images,
    h("label", { for: "image-file" }, "Add an image (PNG, JPEG, WebP or GIF)"), file, upload, imageProblem,
    h("h2", {}, "Messages"),
    (messages.body?.items ?? []).length
      ? h("ul", { id: "messages" }, messages.body.items.map((m) => h("li", {}, `${m.subject}: ${m.status}, ${m.sent} of ${m.recipients} sent`)))
      : h("p", { class: "muted" }, "No messages sent."),
    messageForm,
    h("h2", {}, "Door staff"),
    (staff.body ?? []).length
      ? h("ul", { id: "staff" }, staff.body.map((m) => h("li", {}, m.email, " ", h("button", {
          type: "button", class: "link",
          onclick: async () => { await api("DELETE", `/v1/events/${e.id}/staff/${m.user_id}`); await reload(); },
        }, `Remove ${m.email}`))))
      : h("p", { class: "muted" }, "Organizers and admins can always scan; add others here."),
    staffForm,
    h("h2", {}, "Details"),
    detailsForm(e),
    cancel ? [h("h2", {}, "Cancel the event"), cancel] : null);

  // Live sales: stock as buyers buy, and the figures at most every 3 s.
  if (e.status === "published") {
    const live = new EventSource(`/v1/events/${e.id}/live`);
    session.page.signal.addEventListener("abort", () => live.close());
    let pending = null;
    live.addEventListener("availability", (message) => {
      for (const stock of JSON.parse(message.data).tiers) {
        const cell = left.get(stock.tier_id);
        if (cell) cell.textContent = String(stock.remaining);
      }
      pending ??= setTimeout(async () => {
        pending = null;
        const again = await api("GET", `/v1/events/${e.id}/stats`);
        if (again.status === 200 && !session.page.signal.aborted) drawSales(again.body);
      }, 3000);
    });
  }
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

async function payoutsPage() {
  const [balance, payouts] = await Promise.all([api("GET", "/v1/organizer/balance"), api("GET", "/v1/organizer/payouts?limit=50")]);
  if (balance.status === 401) return account(payoutsPage);
  if (balance.status !== 200) return show("Payouts", h("p", { role: "alert" }, balance.body?.detail ?? "The balance could not be loaded."));
  const b = balance.body;
  const accountForm = form({
    prefix: "payout",
    label: "Payout account",
    fields: [{ name: "account_id", label: "Recipient id at the payment provider", value: b.payout_account, hint: "Where payouts are transferred." }],
    submit: "Save payout account",
    onsubmit: async (v) => {
      const answer = await api("PUT", "/v1/organizer/payout-account", v);
      if (answer.status !== 200) return answer.body;
      return "Saved.";
    },
  });
  show("Payouts and balance",
    h("h2", {}, "Balance"),
    b.currencies.length
      ? h("table", { id: "balance" },
          h("thead", {}, h("tr", {}, ...["Currency", "Payable now", "Pending"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, b.currencies.map((c) => h("tr", {},
            h("th", { scope: "row" }, c.currency), h("td", {}, money(c.payable_minor, c.currency)), h("td", {}, money(c.pending_minor, c.currency))))))
      : h("p", { class: "muted" }, "Nothing owed yet."),
    accountForm,
    h("h2", {}, "Payouts"),
    (payouts.body?.items ?? []).length
      ? h("ul", { id: "payouts" }, payouts.body.items.map((p) => h("li", {},
          `${when(p.created_at)}: ${money(p.amount_minor, p.currency)} to ${p.destination}, ${p.status}`)))
      : h("p", { class: "muted" }, "No payouts yet: they follow an event's end."));
}

/** Adds an endpoint (`ep` null) or edits one: its URL and the event types it gets. */
function endpointForm(types, ep, ondone) {
  const boxes = types.map((t) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "event_types", value: t, checked: ep ? ep.event_types.includes(t) : true }), ` ${t}`));
  const el = form({
    prefix: ep ? `endpoint-${ep.id}` : "endpoint",
    label: ep ? `Edit ${ep.url}` : "New endpoint",
    fields: [{ name: "url", label: "URL", type: "url", value: ep?.url, hint: "Deliveries are POSTed here, signed per Standard Webhooks." }],
    submit: ep ? "Save endpoint" : "Add endpoint",
    onsubmit: async ({ url }) => {
      const event_types = boxes.map((b) => b.firstChild).filter((b) => b.checked).map((b) => b.value);
      const answer = ep
        ? await api("PATCH", `/v1/organizer/webhook-endpoints/${ep.id}`, { url, event_types })
        : await api("POST", "/v1/organizer/webhook-endpoints", { url, event_types });
      if (answer.status !== (ep ? 200 : 201)) return answer.body;
      await ondone(answer.body);
    },
  });
  el.insertBefore(h("fieldset", {}, h("legend", {}, "Event types"), boxes), el.querySelector("button[type=submit]"));
  return el;
}

async function webhooksPage() {
  const [endpoints, types] = await Promise.all([
    api("GET", "/v1/organizer/webhook-endpoints"),
    api("GET", "/v1/organizer/webhook-endpoints/event-types"),
  ]);
  if (endpoints.status === 401) return account(webhooksPage);
  if (endpoints.status !== 200) return show("Webhooks", h("p", { role: "alert" }, endpoints.body?.detail ?? "The endpoints could not be loaded."));
  const secret = h("div", { id: "new-secret", "aria-live": "polite" });
  const create = endpointForm(types.body ?? [], null, async (created) => {
    await webhooksPage();
    document.getElementById("new-secret").replaceChildren(
      h("p", {}, "The signing secret, shown this once: keep it with the receiving system."),
      h("p", { class: "code", id: "secret" }, created.secret));
  });
  const log = async (endpoint, into) => {
    const { body } = await api("GET", `/v1/organizer/webhook-endpoints/${endpoint.id}/deliveries?limit=20`);
    into.replaceChildren(h("table", { class: "deliveries" },
      h("thead", {}, h("tr", {}, ...["Type", "Status", "Attempts", "Response", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, (body?.items ?? []).map((d) => h("tr", {},
        h("td", {}, d.event_type), h("td", {}, d.status), h("td", {}, String(d.attempts)),
        h("td", {}, d.response_status ? String(d.response_status) : d.error ?? ""),
        h("td", {}, h("button", {
          type: "button", class: "link",
          onclick: async () => { await api("POST", `/v1/organizer/webhook-endpoints/${endpoint.id}/deliveries/${d.id}/redeliver`); await log(endpoint, into); },
        }, "Send again")))))));
  };
  show("Webhooks", secret,
    endpoints.body.length
      ? h("ul", { id: "endpoints", class: "events" }, endpoints.body.map((ep) => {
          const deliveries = h("div", {});
          const editor = h("div", {});
          log(ep, deliveries);
          return h("li", {},
            h("h2", {}, ep.url),
            h("p", { class: "muted" }, `${ep.active ? "Active" : `Disabled${ep.disabled_reason ? `: ${ep.disabled_reason}` : ""}`} · ${ep.event_types.join(", ")}`),
            h("button", {
              type: "button", class: "secondary",
              onclick: async () => { await api("POST", `/v1/organizer/webhook-endpoints/${ep.id}/test`); await log(ep, deliveries); },
            }, "Send a test ping"),
            " ",
            h("button", { type: "button", class: "secondary", onclick: () => log(ep, deliveries) }, "Refresh"),
            " ",
            h("button", {
              type: "button", class: "secondary", id: `rotate-${ep.id}`,
              onclick: async () => {
                const answer = await api("POST", `/v1/organizer/webhook-endpoints/${ep.id}/rotate-secret`, {});
                if (answer.status !== 200) return;
                const until = answer.body.previous_secret_expires_at;
                secret.replaceChildren(
                  h("p", {}, `The new signing secret for ${ep.url}, shown this once${until ? `; the old one also signs until ${when(until)}` : ""}:`),
                  h("p", { class: "code", id: "secret" }, answer.body.secret));
                secret.scrollIntoView();
              },
            }, "Rotate secret"),
            " ",
            h("button", {
              type: "button", class: "secondary", id: `active-${ep.id}`,
              onclick: async () => {
                await api("PATCH", `/v1/organizer/webhook-endpoints/${ep.id}`, { active: !ep.active });
                await webhooksPage();
              },
            }, ep.active ? "Pause deliveries" : "Resume deliveries"),
            " ",
            h("button", {
              type: "button", class: "secondary", id: `edit-${ep.id}`,
              onclick: () => editor.replaceChildren(endpointForm(types.body ?? [], ep, () => webhooksPage())),
            }, "Edit"),
            " ",
            h("button", {
              type: "button", class: "link", id: `delete-${ep.id}`,
              onclick: async () => {
                await api("DELETE", `/v1/organizer/webhook-endpoints/${ep.id}`);
                await webhooksPage();
              },
            }, `Delete ${ep.url}`),
            editor, deliveries);
        }))
      : h("p", { class: "muted" }, "No endpoints yet."),
    h("h2", {}, "Add an endpoint"), create);
}

const ROLES = ["attendee", "organizer", "admin"];

/** Admins find a user by email or name and change their role. */
async function usersPage(params) {
  const q = params.get("q") ?? "";
  const { status, body } = await api("GET", `/v1/admin/users?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  if (status === 401) return account(() => usersPage(params));
  if (status !== 200) return show("Users", h("p", { role: "alert" }, body?.detail ?? "Users could not be loaded."));
  const search = h("input", { id: "user-q", type: "search", name: "q", value: q });
  show("Users",
    h("form", { role: "search", onsubmit: (ev) => { ev.preventDefault(); navigate(`/console/users?q=${encodeURIComponent(search.value)}`); } },
      h("label", { for: "user-q" }, "Find by email or name"), search, h("button", { type: "submit" }, "Find")),
    h("table", { id: "users" },
      h("thead", {}, h("tr", {}, ...["Name", "Email", "Role"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, body.items.map((u) => {
        const note = h("span", { role: "status", class: "ok" });
        const select = h("select", {
          "aria-label": `Role of ${u.email}`, id: `role-${u.id}`,
          onchange: async () => {
            const answer = await api("PATCH", `/v1/admin/users/${u.id}`, { role: select.value });
            note.textContent = answer.status === 200 ? " Saved." : ` ${answer.body?.detail ?? "Not saved."}`;
          },
        }, ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)));
        return h("tr", {}, h("th", { scope: "row" }, u.display_name), h("td", {}, u.email), h("td", {}, select, note));
      }))));
}
