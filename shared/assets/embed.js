// Promo embed: <promo-price> and <promo-drop>, served by the platform's origin as
// /v1/embed.js (and /v1/embed/<hash>.js, immutable). No dependencies, no cookies, no
// storage: tokens live in memory only. CSP-safe: no eval, no inline script, styles through
// adoptedStyleSheets (a constructed stylesheet needs no `style-src`). Reference:
// docs/shops/embed.md.
const BASE = new URL(import.meta.url).origin;
const live = new Set();
let tokenSource = null;
const urlTokens = new Map();

const CSS = `
:host{display:block;font:inherit;color:inherit;--promo-accent:#c2255c;--promo-muted:#595959;--promo-bg:transparent;--promo-radius:8px}
:host([hidden]){display:none}
.box{display:flow-root;background:var(--promo-bg);border-radius:var(--promo-radius)}
.row{display:flex;flex-wrap:wrap;align-items:baseline;gap:.5em}
.list{color:var(--promo-muted)}
.final{font-size:1.4em;font-weight:700;color:var(--promo-accent)}
.off{font-weight:700;color:var(--promo-accent)}
.muted{color:var(--promo-muted);font-size:.9em}
ul{list-style:none;margin:.4em 0;padding:0}
li{display:flex;flex-wrap:wrap;gap:.5em;align-items:center;margin:.25em 0}
.amt{margin-left:auto;font-variant-numeric:tabular-nums}
summary{cursor:pointer}
button{font:inherit;cursor:pointer;border:1px solid var(--promo-accent);background:var(--promo-accent);color:#fff;border-radius:4px;padding:.2em .7em}
button.alt{background:transparent;color:var(--promo-accent)}
button:disabled{opacity:.6;cursor:default}
button:focus-visible,summary:focus-visible{outline:3px solid var(--promo-accent);outline-offset:2px}
.err{color:#a61b1b;margin:.3em 0}
.err:empty{display:none}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.count{font-variant-numeric:tabular-nums;font-weight:700}
`;
let sheet = null;
function styles(root) {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  root.adoptedStyleSheets = [sheet];
}

const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** `amount` (minor units of `currency`) in `locale`: ko-KR KRW is "37,800원". */
function money(amount, currency, locale) {
  const cur = new Intl.NumberFormat("en", { style: "currency", currency });
  const digits = cur.resolvedOptions().maximumFractionDigits;
  const value = amount / 10 ** digits;
  if (currency === "KRW" && /^ko\b/i.test(locale || "")) {
    return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(value) + "원";
  }
  return new Intl.NumberFormat(locale || undefined, { style: "currency", currency }).format(value);
}

function jwtSub(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub || null;
  } catch {
    return null;
  }
}

/** The shopper's token for `el`: its `token-url` (fetched, kept in memory until it expires) or setToken's. */
async function tokenFor(el) {
  const url = el.getAttribute("token-url");
  if (url) {
    const kept = urlTokens.get(url);
    if (kept && kept.until > Date.now()) return kept.token;
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) throw new PromoError("token_unavailable", "Could not sign you in to show your own price.", res.status);
    const text = (await res.text()).trim();
    let token = text;
    try {
      token = JSON.parse(text).token ?? text;
    } catch {
      /* a bare token */
    }
    let until = Date.now() + 60_000;
    try {
      const exp = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
      if (exp) until = exp * 1000 - 30_000;
    } catch {
      /* opaque: keep a minute */
    }
    urlTokens.set(url, { token, until });
    return token;
  }
  return tokenSource ? (await tokenSource()) || null : null;
}

class PromoError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const FALLBACK = {
  not_found: "This product has no price here.",
  event_not_found: "This drop does not exist.",
  network: "The price service cannot be reached. Please try again.",
};

async function api(method, path, token, extra = {}) {
  const headers = { ...(extra.headers || {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, credentials: "omit", cache: extra.cache || "default" });
  } catch {
    throw new PromoError("network", FALLBACK.network, 0);
  }
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const code = body?.error?.code || `http_${res.status}`;
    throw new PromoError(code, body?.error?.message || FALLBACK[code] || `The request failed (${res.status}).`, res.status);
  }
  return { status: res.status, body };
}

class Base extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    styles(this.root);
    // What the page shows until the data arrives: the element's own content (a fragment).
    this.root.innerHTML = `<div class="box"><slot></slot></div>`;
    this.timers = [];
  }
  connectedCallback() {
    live.add(this);
    // Space reserved before the data arrives, and kept: no layout shift when it does. A
    // server-rendered fragment inside keeps the height it was painted with.
    if (!this.style.minHeight) {
      const painted = this.childElementCount ? this.getBoundingClientRect().height : 0;
      this.style.minHeight = `max(${this.reserve}, ${painted}px)`;
    }
    this.load();
  }
  disconnectedCallback() {
    live.delete(this);
    this.clear();
  }
  attributeChangedCallback(_name, old, now) {
    if (old !== now && this.isConnected) this.load();
  }
  clear() {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
  later(ms, fn) {
    this.timers.push(setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1))));
  }
  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
  }
  fail(e, where) {
    const code = e.code || "error";
    this.emit("promo:error", { code, message: e.message, status: e.status ?? 0, where });
    return code;
  }
  get locale() {
    return this.getAttribute("locale") || document.documentElement.lang || navigator.language;
  }
  focusKept(fn) {
    const id = this.root.activeElement?.id;
    fn();
    if (id) this.root.getElementById(id)?.focus();
  }
}

class PromoPrice extends Base {
  static get observedAttributes() {
    return ["product", "quantity", "locale", "token-url"];
  }
  get reserve() {
    return "4.5em";
  }
  async load() {
    this.clear();
    const id = this.getAttribute("product");
    const seq = (this.seq = (this.seq || 0) + 1);
    if (!this.answer) {
      // Until the answer arrives, a server-rendered fragment inside the element shows.
      this.root.innerHTML = `<div class="box" aria-busy="true"><slot></slot></div>`;
    }
    if (!id) return this.showError({ code: "invalid_request", message: "No product given." });
    try {
      let token = await tokenFor(this);
      const q = this.quantity;
      const path = `/v1/products/${encodeURIComponent(id)}/max-benefit-price${q > 1 ? `?quantity=${q}` : ""}`;
      let body;
      try {
        ({ body } = await api("GET", path, token));
      } catch (e) {
        // A token refused (expired, revoked): the public price rather than none.
        if (!token || e.status !== 401) throw e;
        this.fail(e, "token");
        token = null;
        ({ body } = await api("GET", path, null));
      }
      if (seq !== this.seq) return;
      this.answer = body;
      this.token = token;
      this.render();
      this.emit("promo:ready", { product: id, answer: body, personal: !!token });
      // Re-read when the answer expires (not sooner than 2 s: a clock ahead of the server's
      // would otherwise re-read in a loop until the server's clock catches up).
      if (body.valid_until) this.later(Math.max(2000, Date.parse(body.valid_until) - Date.now() + 500), () => this.load());
    } catch (e) {
      if (seq !== this.seq) return;
      this.showError(e);
      this.fail(e, "price");
    }
  }
  showError(e) {
    this.answer = null;
    this.root.innerHTML = `<div class="box" role="alert"><p class="err">${esc(e.message)}</p></div>`;
  }
  get quantity() {
    return Math.min(99, Math.max(1, parseInt(this.getAttribute("quantity") || "1", 10) || 1));
  }
  render() {
    const a = this.answer;
    const q = this.quantity;
    const m = (n) => money(n, a.currency, this.locale);
    const off = a.list_total > a.final_price ? Math.floor(((a.list_total - a.final_price) * 100) / a.list_total) : 0;
    const labels = {
      product_coupon: "Coupon",
      cart_coupon: "Order coupon",
      mileage: "Mileage",
      payment_promotion: `Pay with ${a.payment_method || "the promoted method"}`,
    };
    const items = a.breakdown
      .filter((b) => labels[b.kind])
      .map((b, i) => {
        const name = b.id ? b.id.split(":").pop() : "";
        const need = b.id && a.to_download.includes(b.id);
        const btn = !need
          ? ""
          : this.token
            ? `<button id="dl-${i}" data-coupon="${esc(b.id)}">Download<span class="sr"> coupon ${esc(name)}</span></button>`
            : `<span class="muted">(download the coupon)</span>`;
        return `<li><span>${esc(labels[b.kind])}${name ? ` <b>${esc(name)}</b>` : ""}</span>${btn}<span class="amt">−${m(b.amount)}</span></li>`;
      })
      .join("");
    const total = q > 1 ? `<span class="muted">for ${q}</span>` : "";
    this.focusKept(() => {
      this.root.innerHTML = `<div class="box" part="box">
<div class="row" aria-live="polite" aria-atomic="true">
${off ? `<s class="list"><span class="sr">List price </span>${m(a.list_total)}</s><span class="off">${off}% off</span>` : ""}
<strong class="final"><span class="sr">Best price </span>${m(a.final_price)}</strong>${total}
</div>
${items ? `<details><summary id="sum">How to get this price</summary><ul>${items}</ul></details>` : ""}
<p class="err" role="alert" id="msg"></p>
</div>`;
    });
    for (const b of this.root.querySelectorAll("button[data-coupon]")) b.addEventListener("click", () => this.claim(b));
  }
  async claim(button) {
    const coupon = button.dataset.coupon;
    const campaign = coupon.split(":")[0];
    button.disabled = true;
    const msg = this.root.getElementById("msg");
    try {
      const key = crypto.randomUUID();
      const { body } = await api("POST", `/v1/campaigns/${encodeURIComponent(campaign)}/claims`, this.token, {
        headers: { "idempotency-key": key },
      });
      this.emit("promo:claimed", { campaign, coupon: body, product: this.getAttribute("product") });
      await this.load();
      const d = this.root.querySelector("details");
      if (d) d.open = true;
      this.root.getElementById("msg").textContent = "Coupon downloaded.";
      this.root.getElementById("sum")?.focus();
    } catch (e) {
      button.disabled = false;
      msg.textContent = e.message;
      this.fail(e, "claim");
    }
  }
}

const pad = (n) => String(n).padStart(2, "0");
function span(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const hms = `${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return d ? `${d}d ${hms}` : hms;
}

class PromoDrop extends Base {
  static get observedAttributes() {
    return ["event", "locale", "token-url"];
  }
  get reserve() {
    return "7em";
  }
  async load() {
    this.clear();
    const id = this.getAttribute("event");
    if (!id) return this.showError({ message: "No event given." });
    try {
      const token = await tokenFor(this);
      if (token !== this.token) this.mineNow = undefined;
      this.token = token;
      const { body } = await api("GET", `/v1/events/${encodeURIComponent(id)}`, null);
      this.view = body;
      // The shopper's own reservation: read once, then only while it may change by itself
      // (a waiting shopper promoted, a hold run out).
      const r = this.mineNow;
      const due = r === undefined || r?.status === "WAITING" || (r?.hold_until && Date.parse(r.hold_until) <= Date.now());
      if (token && due) {
        // The shopper's reservation unreadable (a refused token): the public panel still shows.
        await this.mine(id).catch((e) => this.fail(e, "reservations"));
      }
      this.render();
      if (!this.ready) {
        this.ready = true;
        this.emit("promo:ready", { event: id, view: body });
      }
    } catch (e) {
      this.showError(e);
      this.fail(e, "event");
    }
    const poll = parseInt(this.getAttribute("poll-seconds") || "2", 10) || 2;
    this.later(poll * 1000, () => this.isConnected && this.load());
    this.tick();
  }
  countdowns() {
    for (const el of this.root.querySelectorAll("[data-until]")) {
      el.textContent = span(Date.parse(el.dataset.until) - Date.now());
    }
  }
  async mine(id) {
    const user = jwtSub(this.token);
    if (!user) return;
    const { body } = await api("GET", `/v1/users/${encodeURIComponent(user)}/reservations`, this.token, {
      cache: "no-store",
    });
    const active = body.reservations.filter(
      (r) => r.event_id === id && (r.status === "RESERVED" || r.status === "WAITING"),
    );
    const was = this.mineNow;
    this.mineNow = active[active.length - 1] || null;
    if (this.mineNow && was && was.status === "WAITING" && this.mineNow.status === "RESERVED") {
      this.emit("promo:reserved", { event: id, reservation_id: this.mineNow.reservation_id, ...this.mineNow });
    }
  }
  tick() {
    const t = setInterval(() => {
      if (!this.isConnected) return clearInterval(t);
      this.countdowns();
    }, 1000);
    this.timers.push(t);
  }
  showError(e) {
    this.shown = null;
    this.root.innerHTML = `<div class="box" role="alert"><p class="err">${esc(e.message)}</p></div>`;
  }
  render() {
    const v = this.view;
    const r = this.mineNow;
    const now = Date.now();
    const price = money(v.price.amount, v.price.currency, this.locale);
    let state;
    let action = "";
    const ended = v.status === "ENDED" || v.status === "CANCELLED" || Date.parse(v.ends_at) <= now;
    if (r && r.status === "RESERVED") {
      state = `<p><b>A place is held for you.</b> Pay within <span class="count" role="timer" data-until="${esc(r.hold_until)}"></span>.</p>`;
      action = `<button id="cancel" class="alt">Cancel reservation</button>`;
    } else if (r && r.status === "WAITING") {
      state = `<p><b>You are on the waitlist: position ${esc(r.position)}.</b> <span class="muted">A place freed is yours in turn.</span></p>`;
      action = `<button id="cancel" class="alt">Leave the waitlist</button>`;
    } else if (ended) {
      state = `<p><b>This drop has ended.</b></p>`;
    } else if (v.status === "INACTIVE" || Date.parse(v.starts_at) > now) {
      state = `<p>Starts in <span class="count" role="timer" data-until="${esc(v.starts_at)}"></span></p>`;
    } else if (v.sold_out || (v.available === 0 && !v.waitlist_open)) {
      state = `<p><b>Sold out.</b></p>`;
    } else {
      const wait = v.available === 0;
      state = `<p><span class="count">${esc(v.available)}</span> of ${esc(v.stock)} available · <span class="count">${esc(v.waiting)}</span> waiting</p>`;
      action = this.token
        ? `<button id="reserve">${wait ? "Join the waitlist" : "Reserve"}</button>`
        : `<span class="muted">Sign in to reserve.</span>`;
    }
    const html = `<div class="box" part="box">
<div class="row"><b>${esc(v.name)}</b><span class="muted">${price}</span></div>
<div aria-live="polite">${state}</div>
${action}
<p class="err" role="alert" id="msg">${esc(this.message || "")}</p>
</div>`;
    // Unchanged: the DOM stays (no re-announcement, focus and buttons kept).
    if (html === this.shown && this.root.querySelector(".box")) return;
    this.shown = html;
    this.focusKept(() => {
      this.root.innerHTML = html;
    });
    this.countdowns();
    this.root.getElementById("reserve")?.addEventListener("click", (e) => this.reserve_(e.target));
    this.root.getElementById("cancel")?.addEventListener("click", (e) => this.cancel(e.target));
  }
  async reserve_(button) {
    button.disabled = true;
    const id = this.getAttribute("event");
    try {
      const { body } = await api("POST", `/v1/events/${encodeURIComponent(id)}/reservations`, this.token, {
        headers: { "idempotency-key": crypto.randomUUID() },
      });
      this.mineNow = body;
      this.message = "";
      this.emit("promo:reserved", { event: id, ...body });
      this.render();
      this.root.getElementById("cancel")?.focus();
    } catch (e) {
      this.message = e.message;
      this.render();
      this.fail(e, "reserve");
    }
  }
  async cancel(button) {
    button.disabled = true;
    const id = this.getAttribute("event");
    const r = this.mineNow;
    try {
      await api("DELETE", `/v1/events/${encodeURIComponent(id)}/reservations/${encodeURIComponent(r.reservation_id)}`, this.token);
      this.mineNow = null;
      this.message = "";
      this.emit("promo:cancelled", { event: id, reservation_id: r.reservation_id });
      await this.load();
      this.root.getElementById("reserve")?.focus();
    } catch (e) {
      this.message = e.message;
      this.render();
      this.fail(e, "cancel");
    }
  }
}

const PromoEmbed = {
  base: BASE,
  /** `fn`: an async function that returns the shopper's token (or null when signed out). */
  setToken(fn) {
    tokenSource = typeof fn === "function" ? fn : fn ? async () => fn : null;
    for (const el of live) el.load();
  },
};
globalThis.PromoEmbed = PromoEmbed;
if (!customElements.get("promo-price")) customElements.define("promo-price", PromoPrice);
if (!customElements.get("promo-drop")) customElements.define("promo-drop", PromoDrop);
export default PromoEmbed;
