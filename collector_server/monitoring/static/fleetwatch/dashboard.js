// fleetwatch dashboard: polls the monitoring API and renders cards, a chart, hosts and alerts.
(function () {
  "use strict";
  const API = "/api/v1/monitoring/";
  const POLL_MS = 1000 * Number(document.querySelector("main").dataset.pollSeconds || 30);
  const $ = (sel) => document.querySelector(sel);
  let selectedHost = "";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function getJSON(path) {
    const response = await fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(path + ": HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function text(value, suffix) {
    return value === null || value === undefined ? "–" : (Math.round(value * 10) / 10) + (suffix || "");
  }

  function emptyRow(message, columns) {
    const cell = el("td", message, "muted");
    cell.colSpan = columns;
    return el("tr", cell);
  }

  function el(tag, content, className) {
    const node = document.createElement(tag);
    if (content instanceof Node) node.appendChild(content); else node.textContent = content;
    if (className) node.className = className;
    return node;
  }

  function level(value) {
    if (value === null || value === undefined) return "";
    return value >= 95 ? "critical" : value >= 85 ? "warning" : "";
  }

  function renderOverview(data) {
    const health = data.system_health;
    const badge = $("#status");
    badge.textContent = health.status;
    badge.className = "badge " + health.status;
    const cards = { cpu: health.cpu_usage, memory: health.memory_usage, disk: health.disk_usage };
    for (const [name, value] of Object.entries(cards)) {
      const card = $("#card-" + name);
      card.className = "card " + level(value);
      card.querySelector(".value").textContent = text(value, " %");
    }
    $("#card-cpu .trend").textContent = "trend: " + data.trends.cpu_trend;
    $("#card-memory .trend").textContent = "trend: " + data.trends.memory_trend;
    $("#card-hosts .value").textContent = health.hosts_up + " up / " + health.hosts_down + " down";
    const api = data.api_performance;
    $("#card-api .value").textContent = api.total_requests + " req";
    $("#card-api .detail").textContent =
      "avg " + text(api.avg_response_time, " ms") + " · errors " + text(api.error_rate, " %");
  }

  function renderHosts(hosts) {
    const body = $("#hosts tbody");
    body.replaceChildren();
    if (!hosts.length) body.appendChild(emptyRow("No host has reported yet.", 5));
    const select = $("#host-select");
    const names = hosts.map((h) => h.hostname);
    if (!selectedHost || !names.includes(selectedHost)) {
      const firstUp = hosts.find((h) => h.is_up);
      selectedHost = firstUp ? firstUp.hostname : names[0] || "";
    }
    select.replaceChildren(...names.map((name) => new Option(name, name, false, name === selectedHost)));
    for (const host of hosts) {
      const row = document.createElement("tr");
      row.append(
        el("td", host.hostname),
        el("td", host.is_up ? "up" : "down", host.is_up ? "up" : "down"),
        el("td", new Date(host.last_seen).toLocaleString()),
        el("td", host.agent_version || "–"),
        el("td", String(host.series_count)),
      );
      body.appendChild(row);
    }
  }

  function renderChart(rows) {
    const width = 600, height = 200;
    const grid = $("#grid");
    grid.replaceChildren();
    for (const pct of [0, 25, 50, 75, 100]) {
      const y = height - (pct / 100) * height;
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", 0); line.setAttribute("x2", width);
      line.setAttribute("y1", y); line.setAttribute("y2", y);
      const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
      label.setAttribute("x", 2); label.setAttribute("y", Math.max(10, y - 2)); label.textContent = pct + "%";
      grid.append(line, label);
    }
    const times = rows.map((r) => Date.parse(r.timestamp));
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const span = Math.max(1, t1 - t0);
    for (const [field, id] of [["cpu_percent", "#line-cpu"], ["memory_percent", "#line-memory"]]) {
      const points = rows
        .filter((r) => r[field] !== null)
        .map((r) => ((Date.parse(r.timestamp) - t0) / span) * width + "," + (height - (r[field] / 100) * height));
      $(id).setAttribute("points", points.join(" "));
    }
    $("#chart-note").textContent = rows.length ? rows.length + " points" : "no data in the last hour";
  }

  function renderAlerts(alerts) {
    const body = $("#alerts tbody");
    body.replaceChildren();
    if (alerts === null) {
      body.appendChild(emptyRow("Alerts are not available on this server.", 4));
      return;
    }
    if (!alerts.length) body.appendChild(emptyRow("No active alert.", 4));
    for (const alert of alerts) {
      const row = document.createElement("tr");
      const button = el("button", "Acknowledge");
      button.addEventListener("click", () => acknowledge(alert.id, button));
      row.append(
        el("td", alert.severity, "sev-" + alert.severity),
        el("td", (alert.name || alert.id) + (alert.summary || alert.description ? " — " + (alert.summary || alert.description) : "")),
        el("td", new Date(alert.started_at || alert.created_at).toLocaleString()),
        el("td", button),
      );
      body.appendChild(row);
    }
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    const response = await fetch(API + "alerts/" + encodeURIComponent(id) + "/acknowledge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    if (!response.ok) {
      button.disabled = false;
      showError("acknowledge " + id + ": HTTP " + response.status);
      return;
    }
    refresh();
  }

  function showError(message) {
    const node = $("#error");
    node.textContent = message;
    node.hidden = !message;
  }

  async function loadAlerts() {
    try {
      const body = await getJSON("alerts");
      const closed = ["resolved", "inactive", "acknowledged"];
      return (body.data || body.results || []).filter((a) => !closed.includes(a.state || a.status));
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  async function refresh() {
    try {
      const [overview, hosts, alerts] = await Promise.all([
        getJSON("dashboard/overview"), getJSON("hosts?limit=500"), loadAlerts(),
      ]);
      renderOverview(overview.data);
      renderHosts(hosts.data);
      renderAlerts(alerts);
      const system = selectedHost
        ? await getJSON("metrics/system?minutes=60&host=" + encodeURIComponent(selectedHost))
        : { data: [] };
      renderChart(system.data);
      $("#updated").textContent = new Date().toLocaleTimeString();
      showError("");
    } catch (error) {
      showError("Could not refresh: " + error.message);
    }
  }

  $("#host-select").addEventListener("change", (event) => { selectedHost = event.target.value; refresh(); });
  refresh();
  setInterval(refresh, POLL_MS);
})();
