/* fleetwatch UI core: API calls, the time range, auto-refresh, themes, the health badge and uPlot charts.
   Page scripts (fleet.js, host.js, ...) register loaders with FW.onRefresh and build on FW.chart. */
"use strict";
(function () {
  const FW = (window.FW = {});
  const body = document.body;
  FW.canOperate = body.dataset.canOperate === "true";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];

  /* ---------- helpers ---------- */
  FW.esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  FW.csrf = () => (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
  FW.api = async function (url, opts) {
    const init = Object.assign({ credentials: "same-origin", headers: {} }, opts || {});
    init.headers = Object.assign({ Accept: "application/json" }, init.headers);
    if (init.body && typeof init.body !== "string") {
      init.body = JSON.stringify(init.body);
      init.headers["Content-Type"] = "application/json";
    }
    if (init.method && init.method !== "GET") init.headers["X-CSRFToken"] = FW.csrf();
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error("the server did not answer (" + err.message + ")");
    }
    if (response.status === 204) return {};
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const why = (data && (data.error || data.detail)) || response.statusText;
      const error = new Error(typeof why === "string" ? why : JSON.stringify(why));
      error.status = response.status;
      throw error;
    }
    return data;
  };
  FW.showError = function (message) {
    const box = document.getElementById("page-error");
    if (!box) return;
    box.hidden = false;
    const line = document.createElement("p");
    line.textContent = message;
    box.appendChild(line);
  };
  FW.clearErrors = function () {
    const box = document.getElementById("page-error");
    if (box) { box.innerHTML = ""; box.hidden = true; }
  };
  FW.flash = function (message, ok) {
    let box = document.getElementById("flash");
    if (!box) {
      box = document.createElement("div");
      box.id = "flash";
      box.setAttribute("role", "status");
      document.getElementById("main").prepend(box);
    }
    box.className = ok ? "flash ok" : "flash error";
    box.textContent = message;
  };
  FW.ago = function (iso) {
    if (!iso) return "–";
    const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.max(s, 0) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  };
  FW.time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "–");
  FW.fmt = function (v, unit) {
    if (v == null || isNaN(v)) return "–";
    if (unit === "B/s" || unit === "B") {
      const k = ["", "K", "M", "G", "T"];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < k.length - 1) { v /= 1024; i++; }
      return v.toFixed(v < 10 && i ? 1 : 0) + " " + k[i] + unit;
    }
    const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    return v.toFixed(digits) + (unit ? (unit === "%" ? "%" : " " + unit) : "");
  };
  /* One log record as a table row; a request id links to every line of that request. */
  FW.logRow = function (r, withHost) {
    const rid = r.request_id ? ' <a class="rid" href="/requests/' + encodeURIComponent(r.request_id) + '/">' +
      FW.esc(r.request_id) + "</a>" : "";
    const attrs = r.attributes && Object.keys(r.attributes).length ?
      ' <span class="attrs muted">' + FW.esc(JSON.stringify(r.attributes)) + "</span>" : "";
    return '<tr class="lvl-' + FW.esc((r.level || "").toLowerCase()) + '"><td class="nowrap">' + FW.time(r.timestamp) +
      '</td><td><span class="level">' + FW.esc(r.level) + "</span></td>" +
      (withHost ? "<td>" + FW.esc(r.host) + "</td>" : "") + "<td>" + FW.esc(r.service) + "</td>" +
      '<td class="msg">' + FW.esc(r.message) + rid + attrs + "</td></tr>";
  };
  FW.color = (i) => PALETTE[i % PALETTE.length];
  FW.cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  /* ---------- time range (the URL holds it) ---------- */
  const range = (FW.range = { listeners: [] });
  range.params = function () {
    const q = new URLSearchParams(location.search);
    if (q.get("start")) return { start: q.get("start"), end: q.get("end") || "" };
    return { range: q.get("range") || (document.getElementById("range") || {}).value || "1h" };
  };
  range.zoomed = () => !!new URLSearchParams(location.search).get("start");
  range.query = function () {
    const p = range.params();
    return Object.keys(p).filter((k) => p[k]).map((k) => k + "=" + encodeURIComponent(p[k])).join("&");
  };
  range.write = function (changes) {
    const q = new URLSearchParams(location.search);
    Object.keys(changes).forEach((k) => (changes[k] == null ? q.delete(k) : q.set(k, changes[k])));
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
    range.sync();
    range.listeners.forEach((fn) => fn());
  };
  range.set = (name) => range.write({ range: name, start: null, end: null });
  range.zoom = (a, b) => range.write({ start: String(Math.floor(a)), end: String(Math.ceil(b)) });
  range.sync = function () {
    const select = document.getElementById("range");
    const reset = document.getElementById("zoom-reset");
    if (!select) return;
    const q = new URLSearchParams(location.search);
    if (q.get("start")) {
      select.value = "custom";
      if (reset) reset.hidden = false;
    } else {
      select.value = q.get("range") || select.value || "1h";
      if (select.value === "custom") select.value = "1h";
      if (reset) reset.hidden = true;
    }
  };

  /* ---------- refresh ---------- */
  const loaders = [];
  let paused = false;
  FW.onRefresh = function (fn) { loaders.push(fn); };
  FW.refresh = function () {
    const stamp = document.getElementById("updated");
    loaders.forEach((fn) => {
      try { Promise.resolve(fn()).catch((err) => FW.showError(err.message)); }
      catch (err) { FW.showError(err.message); }
    });
    if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
  };
  function setupRefresh() {
    const seconds = parseInt(body.dataset.refreshSeconds || "30", 10);
    const button = document.getElementById("refresh-toggle");
    if (button) {
      button.addEventListener("click", () => {
        paused = !paused;
        button.setAttribute("aria-pressed", String(paused));
        button.textContent = paused ? "Resume refresh" : "Pause refresh";
      });
    }
    setInterval(() => {
      if (!paused && !range.zoomed() && !document.hidden && loaders.length) FW.refresh();
    }, seconds * 1000);
    const select = document.getElementById("range");
    if (select) select.addEventListener("change", () => select.value !== "custom" && range.set(select.value));
    const reset = document.getElementById("zoom-reset");
    if (reset) reset.addEventListener("click", () => range.set(
      (select && select.querySelector("option:not([hidden])[selected]") || {}).value || "1h"));
    range.listeners.push(FW.refresh);
    range.sync();
  }

  /* ---------- theme ---------- */
  function setupTheme() {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try { localStorage.setItem("fw-theme", next); } catch (err) { /* private mode */ }
      FW.charts.forEach((c) => c.redraw());
    });
  }

  /* ---------- pipeline health badge ---------- */
  async function loadHealth() {
    const badge = document.getElementById("health");
    if (!badge) return;
    try {
      const body = await FW.api("/ui/api/health");
      const s = body.data.services || {};
      const streams = s.streams || {};
      const lag = ((streams.metrics || {}).lag || 0) + ((streams.logs || {}).lag || 0);
      const parts = [
        "workers " + ((s.workers || {}).alive ?? "?"),
        "scheduler " + ((s.scheduler || {}).healthy ? "✓" : "✗"),
        "lag " + lag,
        "dead letters " + (streams.deadletter_length ?? "?"),
      ];
      const failing = body.data.failing || [];
      badge.className = "badge " + (failing.length ? "bad" : "ok");
      badge.textContent = (failing.length ? "pipeline: " + failing.join(", ") + " failing · " : "pipeline ok · ") + parts.join(" · ");
      badge.title = failing.map((n) => n + ": " + ((s[n] || {}).error || "failing")).join("\n") || "every check passed";
    } catch (err) {
      badge.className = "badge bad";
      badge.textContent = "pipeline health unknown";
      badge.title = err.message;
    }
  }

  /* ---------- charts ---------- */
  FW.charts = [];
  function markersPlugin(getMarkers, getThresholds) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.strokeStyle = FW.cssVar("--marker") || "#d62728";
          (getMarkers() || []).forEach((m) => {
            const x = u.valToPos(m.t, "x", true);
            if (x < left || x > left + width) return;
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          });
          ctx.strokeStyle = FW.cssVar("--threshold") || "#e377c2";
          (getThresholds() || []).forEach((t) => {
            const y = u.valToPos(t, "y", true);
            if (y < top || y > top + height) return;
            ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
          });
          ctx.restore();
        }],
      },
    };
  }

  /* A chart in a <figure class="chart">: call .load(url) to fetch and draw. */
  FW.chart = function (figure, options) {
    options = options || {};
    const plot = figure.querySelector(".plot");
    const unit = options.unit != null ? options.unit : figure.dataset.unit || "";
    const stacked = figure.dataset.stacked === "true";
    const self = { figure: figure, uplot: null, data: null, thresholds: options.thresholds || [] };
    function height() { return window.innerWidth < 600 ? 150 : 190; }
    function width() { return Math.max(200, plot.clientWidth || figure.clientWidth || 300); }
    self.width = width;
    self.draw = function (data) {
      self.data = data;
      if (self.uplot) { self.uplot.destroy(); self.uplot = null; }
      plot.innerHTML = "";
      const note = figure.querySelector(".note") || figure.appendChild(document.createElement("p"));
      note.className = "note muted";
      if (!data.series.length || !data.timestamps.length) {
        plot.innerHTML = '<p class="empty muted">No data in this range.</p>';
        note.textContent = "";
        figure.dataset.drawn = "empty-" + Date.now();
        return;
      }
      const raw = data.series.map((s) => s.values);
      let shown = raw;
      if (stacked) {
        const acc = new Array(data.timestamps.length).fill(0);
        shown = raw.map((vals) => vals.map((v, i) => (acc[i] += v || 0)));
      }
      const fg = FW.cssVar("--fg") || "#222";
      const grid = FW.cssVar("--grid") || "#ddd";
      const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      const series = [{}].concat(data.series.map((s, i) => ({
        label: s.label,
        stroke: FW.color(i),
        width: 1.5,
        fill: stacked ? FW.color(i) + "55" : undefined,
        value: (u, v, si, idx) => FW.fmt(idx == null ? v : raw[si - 1][idx], unit),
        spanGaps: false,
      })));
      const opts = {
        width: width(),
        height: height(),
        series: series,
        scales: {
          x: { time: true, min: data.start, max: data.end },
          // The data's range widened to the thresholds, padded; a flat line gets some room.
          y: { range: (u, min, max) => {
            let lo = Math.min.apply(null, [min].concat(self.thresholds));
            let hi = Math.max.apply(null, [max].concat(self.thresholds));
            if (lo == null || hi == null || isNaN(lo) || isNaN(hi)) return [0, 1];
            if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
            const pad = (hi - lo) * 0.05;
            // A stacked chart starts at zero, so each band's height reads as its share.
            return [stacked || (lo >= 0 && lo - pad < 0) ? Math.min(0, lo) : lo - pad, hi + pad];
          } },
        },
        axes: [Object.assign({}, axis), Object.assign({ values: (u, vals) => vals.map((v) => FW.fmt(v, unit)), size: 72 }, axis)],
        cursor: { sync: { key: "fw" }, drag: { x: true, y: false, setScale: false } },
        legend: { live: true },
        plugins: [markersPlugin(() => data.markers, () => self.thresholds)],
        hooks: {
          setSelect: [(u) => {
            if (u.select.width > 4) {
              const a = u.posToVal(u.select.left, "x");
              const b = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              FW.range.zoom(a, b);
            }
          }],
        },
      };
      self.uplot = new uPlot(opts, [data.timestamps].concat(shown), plot);
      const firings = (data.markers || []).length;
      note.textContent = (firings ? firings + " alert firing" + (firings > 1 ? "s" : "") + " marked · " : "") +
        "step " + data.step + " s · " + data.source;
      figure.dataset.drawn = String(Date.now());
    };
    self.load = async function (url) {
      figure.setAttribute("aria-busy", "true");
      try {
        const sep = url.includes("?") ? "&" : "?";
        const body = await FW.api(url + sep + FW.range.query() + "&width=" + width());
        self.draw(body.data);
        figure.classList.remove("failed");
        return body.data;
      } catch (err) {
        if (self.uplot) { self.uplot.destroy(); self.uplot = null; }
        figure.classList.add("failed");
        const title = (figure.querySelector("figcaption") || {}).textContent || "chart";
        plot.innerHTML = '<p class="error">Could not load ' + FW.esc(title) + ": " + FW.esc(err.message) + "</p>";
        figure.dataset.drawn = "failed";
        return null;
      } finally {
        figure.removeAttribute("aria-busy");
      }
    };
    self.redraw = function () { if (self.data) self.draw(self.data); };
    self.resize = function () { if (self.uplot) self.uplot.setSize({ width: width(), height: height() }); };
    FW.charts.push(self);
    return self;
  };

  /* Every <figure class="chart" data-chart> of the page: one request each. */
  FW.namedCharts = function () {
    const charts = Array.from(document.querySelectorAll("figure.chart[data-chart]")).map((fig) => {
      const chart = FW.chart(fig);
      const q = "chart=" + encodeURIComponent(fig.dataset.chart) +
        (fig.dataset.host ? "&host=" + encodeURIComponent(fig.dataset.host) : "");
      return { chart: chart, url: "/ui/api/chart?" + q };
    });
    return () => Promise.all(charts.map((c) => c.chart.load(c.url)));
  };

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => FW.charts.forEach((c) => c.resize()), 150);
  });

  setupTheme();
  setupRefresh();
  loadHealth();
  setInterval(loadHealth, 30000);
  document.addEventListener("DOMContentLoaded", () => FW.refresh());
})();
