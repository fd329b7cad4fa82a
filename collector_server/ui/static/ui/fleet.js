/* The fleet page: every host with state, alerts and sparklines; sort and filter in the browser. */
"use strict";
(function () {
  const table = document.getElementById("fleet");
  const tbody = table.querySelector("tbody");
  const filter = document.getElementById("fleet-filter");
  const stateSelect = document.getElementById("fleet-state");
  const q = new URLSearchParams(location.search);
  let hosts = [];
  let units = {};
  let sortKey = q.get("sort") || "hostname";
  let sortDir = 1;
  filter.value = q.get("filter") || "";
  stateSelect.value = q.get("state") || "";

  function sparkline(points, unit) {
    if (!points || !points.length) return '<span class="muted">–</span>';
    if (points.length === 1) points = [[points[0][0] - 1, points[0][1]], points[0]];
    const w = 100, h = 24;
    const vals = points.map((p) => p[1]);
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const max = unit === "%" ? 100 : Math.max.apply(null, vals) || 1;
    const xy = points.map((p) => ((p[0] - t0) / ((t1 - t0) || 1) * w).toFixed(1) + "," +
      (h - Math.min(p[1] / max, 1) * (h - 2) - 1).toFixed(1)).join(" ");
    const last = vals[vals.length - 1];
    return '<svg class="spark" viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none" aria-hidden="true">' +
      '<polyline points="' + xy + '"/></svg><span class="spark-value">' + FW.fmt(last, unit) + "</span>";
  }

  function matches(h, text, state) {
    if (state === "alerting" ? !h.firing : state && h.state !== state) return false;
    if (!text) return true;
    return text.toLowerCase().split(/\s+/).every((word) => {
      if (word.includes("=")) {
        const [k, v] = word.split("=", 2);
        return Object.keys(h.labels).some((lk) => lk.toLowerCase() === k && String(h.labels[lk]).toLowerCase() === v);
      }
      return h.hostname.toLowerCase().includes(word) ||
        Object.keys(h.labels).some((k) => (k + "=" + h.labels[k]).toLowerCase().includes(word));
    });
  }

  function render() {
    const text = filter.value.trim(), state = stateSelect.value;
    const rows = hosts.filter((h) => matches(h, text, state)).sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      return (x > y ? 1 : x < y ? -1 : 0) * sortDir;
    });
    document.getElementById("fleet-count").textContent = rows.length + " of " + hosts.length + " hosts";
    tbody.innerHTML = rows.length ? rows.map((h) => {
      const href = "/hosts/" + encodeURIComponent(h.hostname) + "/";
      const labels = Object.keys(h.labels).map((k) => '<span class="chip">' + FW.esc(k + "=" + h.labels[k]) + "</span>").join(" ");
      return '<tr data-host="' + FW.esc(h.hostname) + '"><td><a href="' + href + '">' + FW.esc(h.hostname) + "</a> " + labels +
        '</td><td><span class="state ' + h.state + '">' + h.state + "</span></td>" +
        "<td>" + (h.firing ? '<a class="firing" href="/alerts/?host=' + encodeURIComponent(h.hostname) + '">' + h.firing + " firing</a>" : '<span class="muted">0</span>') +
        '</td><td class="nowrap" title="' + FW.esc(h.last_seen) + '">' + FW.ago(h.last_seen) + "</td><td>" + FW.esc(h.agent_version || "?") + "</td>" +
        ["cpu", "memory", "disk", "network"].map((m) => '<td class="spark-cell">' + sparkline(h.sparklines[m], units[m]) + "</td>").join("") +
        "</tr>";
    }).join("") : '<tr><td colspan="9" class="muted">' + (hosts.length ? "No host matches the filter." : "No host has reported yet.") + "</td></tr>";
  }

  function remember() {
    const changes = { filter: filter.value || null, state: stateSelect.value || null };
    const p = new URLSearchParams(location.search);
    Object.keys(changes).forEach((k) => (changes[k] == null ? p.delete(k) : p.set(k, changes[k])));
    history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p : ""));
  }
  filter.addEventListener("input", () => { remember(); render(); });
  stateSelect.addEventListener("change", () => { remember(); render(); });
  table.querySelectorAll("button[data-sort]").forEach((b) => b.addEventListener("click", () => {
    sortDir = sortKey === b.dataset.sort ? -sortDir : 1;
    sortKey = b.dataset.sort;
    table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
    b.parentElement.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    render();
  }));

  FW.onRefresh(async () => {
    try {
      const body = await FW.api("/ui/api/fleet?" + FW.range.query() + "&width=100");
      hosts = body.data.hosts;
      units = body.data.units;
      render();
      table.dataset.loaded = "true";
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="9" class="error">Could not load the hosts: ' + FW.esc(err.message) + "</td></tr>";
    }
  });
})();
