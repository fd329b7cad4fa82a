/* Log search: the URL holds the API's search parameters, so an alert's log link opens this page. */
"use strict";
(function () {
  const form = document.getElementById("log-search");
  const f = form.elements;
  const tbody = document.querySelector("#logs tbody");
  const more = document.getElementById("more");
  const FIELDS = ["min_level", "service", "host", "q", "pattern", "request_id"];
  const RANGE_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  let cursor = null, tailing = null, newest = null;

  function readUrl() {
    const p = new URLSearchParams(location.search);
    FIELDS.forEach((k) => (f[k].value = p.get(k) || ""));
    f.attrs.value = Array.from(p.keys()).filter((k) => k.startsWith("attr.")).map((k) => k.slice(5) + "=" + p.get(k)).join(" ");
    if (p.get("start")) f.range.value = "custom";
    else if (p.get("range")) f.range.value = p.get("range");
  }

  function writeUrl() {
    const p = new URLSearchParams(location.search);
    FIELDS.forEach((k) => (f[k].value ? p.set(k, f[k].value) : p.delete(k)));
    Array.from(p.keys()).filter((k) => k.startsWith("attr.")).forEach((k) => p.delete(k));
    f.attrs.value.split(/\s+/).filter((s) => s.includes("=")).forEach((s) => {
      const i = s.indexOf("=");
      p.set("attr." + s.slice(0, i), s.slice(i + 1));
    });
    if (f.range.value !== "custom") { p.delete("start"); p.delete("end"); p.set("range", f.range.value); }
    history.replaceState(null, "", location.pathname + "?" + p);
  }

  function apiQuery(extra) {
    const p = new URLSearchParams(location.search);
    const name = p.get("range");
    p.delete("range");
    if (!p.get("start")) p.set("start", String(Math.floor(Date.now() / 1000) - (RANGE_SECONDS[name || f.range.value] || 3600)));
    p.set("limit", "100");
    Object.keys(extra || {}).forEach((k) => p.set(k, extra[k]));
    return p.toString();
  }

  async function search(append) {
    const query = apiQuery(append && cursor ? { cursor: cursor } : {});
    document.getElementById("api-link").href = "/api/v1/logs/search?" + query;
    try {
      const body = await FW.api("/api/v1/logs/search?" + query);
      const html = body.data.map((r) => FW.logRow(r, true)).join("");
      if (append) tbody.insertAdjacentHTML("beforeend", html);
      else if (html) tbody.innerHTML = html;
      else if (body.partial) tbody.innerHTML = '<tr><td colspan="5" class="muted">No matches since ' + FW.esc(body.searched_until) + " yet: press More to search further back.</td></tr>";
      else tbody.innerHTML = '<tr><td colspan="5" class="muted">No records match.</td></tr>';
      if (!append) newest = body.data.length ? body.data[0].timestamp : newest;
      cursor = body.next_cursor;
      more.hidden = !cursor;
      document.getElementById("log-count").textContent = tbody.querySelectorAll("tr[class^=lvl]").length + " records shown" + (body.partial ? ", searched to " + body.searched_until : "") + (cursor ? ", more available" : "");
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="5" class="error">The search failed: ' + FW.esc(err.message) + "</td></tr>";
      more.hidden = true;
    }
  }

  async function tail() {
    const extra = { order: "oldest" };
    if (newest) extra.start = String(Date.parse(newest) / 1000 + 0.001);
    try {
      const body = await FW.api("/api/v1/logs/search?" + apiQuery(extra));
      if (!body.data.length) return;
      const empty = tbody.querySelector("td.muted");
      if (empty) tbody.innerHTML = "";
      body.data.forEach((r) => tbody.insertAdjacentHTML("afterbegin", FW.logRow(r, true)));
      newest = body.data[body.data.length - 1].timestamp;
    } catch (err) {
      FW.flash("Live tail stopped: " + err.message, false);
      toggleTail();
    }
  }

  function toggleTail() {
    const button = document.getElementById("tail-toggle");
    if (tailing) { clearInterval(tailing); tailing = null; }
    else { tailing = setInterval(tail, 2000); tail(); }
    button.setAttribute("aria-pressed", String(!!tailing));
    button.textContent = tailing ? "Stop tail" : "Live tail";
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); writeUrl(); search(false); });
  f.range.addEventListener("change", () => { writeUrl(); search(false); });
  more.addEventListener("click", () => search(true));
  document.getElementById("tail-toggle").addEventListener("click", toggleTail);
  readUrl();
  search(false);
})();
