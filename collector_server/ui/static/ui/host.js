/* The host page: one chart per metric group, the host's alerts and its recent logs. */
"use strict";
(function () {
  const host = document.querySelector(".charts").dataset.host;
  FW.onRefresh(FW.namedCharts());

  async function loadAlerts() {
    const tbody = document.querySelector("#host-alerts tbody");
    try {
      const body = await FW.api("/api/v1/monitoring/alerts?limit=50&host=" + encodeURIComponent(host) +
        "&state=pending&state=firing&state=resolved");
      tbody.innerHTML = body.data.length ? body.data.map((a) =>
        '<tr><td><span class="sev ' + FW.esc(a.severity) + '">' + FW.esc(a.severity) + "</span></td>" +
        '<td><a href="/alerts/?host=' + encodeURIComponent(host) + '">' + FW.esc(a.name) + "</a> " +
        FW.esc(a.summary || "") + "</td><td>" + FW.esc(a.status) + "</td><td>" + FW.ago(a.fired_at || a.created_at) +
        "</td></tr>").join("") : '<tr><td colspan="4" class="muted">No alerts.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="4" class="error">Could not load the alerts: ' + FW.esc(err.message) + "</td></tr>";
    }
  }

  async function loadLogs() {
    const tbody = document.querySelector("#host-logs tbody");
    try {
      const body = await FW.api("/api/v1/logs/search?limit=20&host=" + encodeURIComponent(host));
      tbody.innerHTML = body.data.length ? body.data.map((r) => FW.logRow(r, false)).join("") :
        '<tr><td colspan="4" class="muted">No log records.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="4" class="error">Could not load the logs: ' + FW.esc(err.message) + "</td></tr>";
    }
  }
  FW.onRefresh(loadAlerts);
  FW.onRefresh(loadLogs);
})();
