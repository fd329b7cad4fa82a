/* The models page: the models API's table (optionally by organisation) and charts
   (GET /api/v1/monitoring/models and models/series), the KV-cache chart (/ui/api/chart) and
   each model's serving hosts with their GPU utilisation (/ui/api/model-hosts). */
"use strict";
(function () {
  const table = document.getElementById("models");
  const rowsBody = table.querySelector("tbody");
  const count = document.getElementById("models-count");
  const byOrg = document.getElementById("by-organization");
  const hosts = document.querySelector("#model-hosts tbody");
  byOrg.checked = new URLSearchParams(location.search).get("by") === "organization";
  const RANGE_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };

  /* The models API takes start/end (unix seconds); the page's range picker says "1h" or a zoom. */
  function apiRange() {
    const p = FW.range.params();
    if (p.start) return "start=" + encodeURIComponent(p.start) + (p.end ? "&end=" + encodeURIComponent(p.end) : "");
    const end = Math.floor(Date.now() / 1000);
    return "start=" + (end - (RANGE_SECONDS[p.range] || 3600)) + "&end=" + end;
  }
  const grouping = () => (byOrg.checked ? "&by=organization" : "");

  const n = (v) => (v == null ? "–" : String(v));
  const quantile = (name, q) => (r) => (r[name] || {})[q];
  const COLUMNS = [
    ["requests", (r) => r.requests, n],
    ["errors", (r) => r.errors, n],
    ["input_tokens_per_second", (r) => r.input_tokens_per_second, (v) => FW.fmt(v, "")],
    ["output_tokens_per_second", (r) => r.output_tokens_per_second, (v) => FW.fmt(v, "")],
    ["latency_p50", quantile("latency_seconds", "p50"), (v) => FW.fmt(v, "s")],
    ["latency_p95", quantile("latency_seconds", "p95"), (v) => FW.fmt(v, "s")],
    ["ttft_p50", quantile("time_to_first_token_seconds", "p50"), (v) => FW.fmt(v, "s")],
    ["ttft_p95", quantile("time_to_first_token_seconds", "p95"), (v) => FW.fmt(v, "s")],
    ["cost_usd", (r) => r.cost_usd, (v) => (v == null ? "–" : "$" + Number(v).toFixed(4))],
  ];

  async function loadTable() {
    const grouped = byOrg.checked;
    document.querySelectorAll(".org-col").forEach((th) => (th.hidden = !grouped));
    const url = "/api/v1/monitoring/models?" + apiRange() + grouping();
    const body = await FW.api(url);
    table.dataset.source = url; // what the figures were read from (tests compare with it)
    const rows = body.models || [];
    count.textContent = rows.length + " row" + (rows.length === 1 ? "" : "s");
    if (!rows.length) {
      rowsBody.innerHTML = '<tr><td colspan="11" class="muted">No inferences recorded in this range.</td></tr>';
      return;
    }
    rowsBody.innerHTML = rows.map((r) => '<tr data-model="' + FW.esc(r.model) + '" data-organization="' +
      FW.esc(r.organization || "") + '"><th scope="row">' + FW.esc(r.model) + "</th>" +
      (grouped ? '<td class="org">' + (r.organization ? FW.esc(r.organization) : '<span class="muted">none</span>') + "</td>" : "") +
      COLUMNS.map(([name, get, fmt]) => {
        const v = get(r);
        return '<td class="num" data-field="' + name + '" data-value="' + FW.esc(v == null ? "" : v) + '">' +
          FW.esc(fmt(v)) + "</td>";
      }).join("") + "</tr>").join("");
  }

  /* One chart per figure of the models API; error % = errors / requests of the same buckets. */
  const figureCharts = Array.from(document.querySelectorAll("figure.chart[data-figure]")).map((fig) => ({
    figure: fig.dataset.figure, chart: FW.chart(fig),
  }));
  async function series(figure, width) {
    const url = "/api/v1/monitoring/models/series?figure=" + figure + "&" + apiRange() + grouping() +
      "&points=" + Math.max(10, Math.min(4000, Math.round(width)));
    return (await FW.api(url));
  }
  function errorPercent(requests, errors) {
    const failed = {};
    errors.series.forEach((s) => (failed[s.label] = s.values));
    const out = Object.assign({}, requests, { series: requests.series.map((s) => ({
      label: s.label, labels: s.labels,
      values: s.values.map((v, i) => (v ? 100 * ((failed[s.label] || [])[i] || 0) / v : null)),
    })) });
    return out;
  }
  async function loadFigure(item) {
    const fig = item.chart.figure;
    fig.setAttribute("aria-busy", "true");
    try {
      const width = item.chart.width();
      let data;
      if (item.figure === "error_percent") {
        const [requests, errors] = await Promise.all([series("requests", width), series("errors", width)]);
        data = errorPercent(requests, errors);
      } else {
        data = await series(item.figure, width);
      }
      item.chart.draw(data);
      fig.classList.remove("failed");
    } catch (err) {
      fig.classList.add("failed");
      fig.querySelector(".plot").innerHTML = '<p class="error">Could not load ' +
        FW.esc(fig.querySelector("figcaption").textContent) + ": " + FW.esc(err.message) + "</p>";
      fig.dataset.drawn = "failed";
    } finally {
      fig.removeAttribute("aria-busy");
    }
  }
  const loadCharts = () => Promise.all(figureCharts.map(loadFigure));

  async function loadHosts() {
    const body = await FW.api("/ui/api/model-hosts?" + FW.range.query());
    const rows = [];
    body.data.forEach((m) => m.hosts.forEach((h) => rows.push('<tr data-model="' + FW.esc(m.model) + '"><td>' +
      FW.esc(m.model) + '</td><td><a href="/hosts/' + encodeURIComponent(h.host) + '/">' + FW.esc(h.host) +
      '</a></td><td class="num">' + FW.esc(h.gpus) + '</td><td class="num" data-field="gpu">' +
      FW.fmt(h.gpu_utilization_percent, "%") + "</td></tr>")));
    hosts.innerHTML = rows.join("") ||
      '<tr><td colspan="4" class="muted">No model server reports to fleetwatch (docs/inference.md, scrape presets).</td></tr>';
  }

  byOrg.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    if (byOrg.checked) params.set("by", "organization"); else params.delete("by");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
    Promise.all([loadTable(), loadCharts()]).catch((err) => FW.showError(err.message));
  });
  FW.onRefresh(loadTable);
  FW.onRefresh(loadCharts);
  FW.onRefresh(loadHosts);
  FW.onRefresh(FW.namedCharts());
})();
