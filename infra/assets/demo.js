// The demo shop's own script (promoctl dev only): a token switcher, as a shop's sign-in
// would give the embed its shopper's token, and a log of the embed's events.
const select = document.getElementById("shopper");
const log = document.getElementById("log");

function note(text) {
  const li = document.createElement("li");
  li.textContent = text;
  log.prepend(li);
}

for (const name of ["promo:ready", "promo:claimed", "promo:error", "promo:reserved", "promo:cancelled"]) {
  document.addEventListener(name, (e) => {
    const d = e.detail || {};
    const what = d.reservation_id ? ` reservation_id=${d.reservation_id}` : d.code ? ` code=${d.code}` : "";
    note(`${name}${what}`);
  });
}

async function use(user) {
  await customElements.whenDefined("promo-price");
  if (!user) return window.PromoEmbed.setToken(null);
  const res = await fetch(`/demo/token?user=${encodeURIComponent(user)}`, { cache: "no-store" });
  const { token } = await res.json();
  window.PromoEmbed.setToken(async () => token);
}

const initial = new URLSearchParams(location.search).get("user") || "";
if (initial && ![...select.options].some((o) => o.value === initial)) select.add(new Option(initial, initial));
select.value = initial;
if (initial) use(initial);
select.addEventListener("change", () => use(select.value));
