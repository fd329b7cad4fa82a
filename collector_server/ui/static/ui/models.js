/* The models page: the models API's table (optionally by organisation), one chart per figure
   (named charts of /ui/api/chart) and each model's serving hosts with their GPU utilisation. */
"use strict";
(function () {
  const table = document.querySelector("#models tbody");
  const count = document.getElementById("models-count");
  const byOrg = document.getElementById("by-organization");
  const hosts = document.querySelector("#model-hosts tbody");
  const q = new URLSearchParams(location.search);
  byOrg.checked = q.get("by") === "organization";

  /* The models API's field names (docs/inference.md); each cell's raw value goes in data-value. */
  const COLUMNS = [
    ["requests", (v) => FW.fmt(v, "").replace(/\.00$/, "")],
    ["errors", (v) => FW.fmt(v, "").replace(/\.00$/, "")],
    ["input_tokens_per_second", (v) => FW.fmt(v, "")],
    ["output_tokens_per_second", (v) => FW.fmt(v, "")],
    ["latency_p50_seconds", (v) => FW.fmt(v, "s")],
    ["latency_p95_seconds", (v) => FW.fmt(v, "s")],
    ["ttft_p50_seconds", (v) => FW.fmt(v, "s")],
    ["ttft_p95_seconds", (v) => FW.fmt(v, "s")],
    ["cost_usd", (v) => (v == null ? "–" : "$" + Number(v).toFixed(4))],
  ];
  const cell = (name, value, text) => '<td class="num" data-field="' + name + '" data-value="' +
    FW.esc(value == null ? "" : value) + '">' + FW.esc(text) + "</td>";

  async function loadTable() {
    const grouped = byOrg.checked;
    document.querySelectorAll(".org-col").forEach((th) => (th.hidden = !grouped));
    const url = "/api/v1/monitoring/models?" + FW.range.query() + (grouped ? "&by=organization" : "");
    const body = await FW.api(url);
    const rows = (body.data && body.data.models) || body.data || [];
    count.textContent = rows.length + " row" + (rows.length === 1 ? "" : "s");
    if (!rows.length) {
      table.innerHTML = '<tr><td colspan="11" class="muted">No inferences recorded in this range.</td></tr>';
      return;
    }
    table.innerHTML = rows.map((r) => '<tr data-model="' + FW.esc(r.model) + '" data-organization="' +
      FW.esc(r.organization || "") + '"><th scope="row">' + FW.esc(r.model) + "</th>" +
      (grouped ? '<td class="org">' + (r.organization ? FW.esc(r.organization) : '<span class="muted">none</span>') + "</td>" : "") +
      COLUMNS.map(([name, fmt]) => cell(name, r[name], fmt(r[name]))).join("") + "</tr>").join("");
  }

  async function loadHosts() {
    const body = await FW.api("/ui/api/model-hosts?" + FW.range.query());
    const rows = [];
    body.data.forEach((m) => m.hosts.forEach((h) => rows.push('<tr data-model="' + FW.esc(m.model) + '"><td>' +
      FW.esc(m.model) + '</td><td><a href="/hosts/' + encodeURIComponent(h.host) + '/">' + FW.esc(h.host) +
      '</a></td><td class="num">' + FW.esc(h.gpus) + '</td><td class="num" data-field="gpu">' +
      FW.fmt(h.gpu_utilization_percent, "%") + "</td></tr>")));
    hosts.innerHTML = rows.join("") || '<tr><td colspan="4" class="muted">No model server reports to fleetwatch (see docs/inference.md, scrape presets).</td></tr>';
  }

  byOrg.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    if (byOrg.checked) params.set("by", "organization"); else params.delete("by");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
    loadTable().catch((err) => FW.showError(err.message));
  });
  FW.onRefresh(loadTable);
  FW.onRefresh(loadHosts);
  FW.onRefresh(FW.namedCharts());
})();
