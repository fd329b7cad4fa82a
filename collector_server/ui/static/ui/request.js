/* Every record of one request, across hosts and services, oldest first. */
"use strict";
(function () {
  const id = document.getElementById("request-id").textContent;
  FW.onRefresh(async () => {
    const summary = document.getElementById("request-summary");
    const tbody = document.querySelector("#request-logs tbody");
    try {
      const body = await FW.api("/api/v1/logs/requests/" + encodeURIComponent(id));
      summary.textContent = body.count + " records · hosts " + body.hosts.join(", ") + " · services " +
        body.services.join(", ") + " · " + body.duration_ms + " ms" + (body.truncated ? " · truncated" : "");
      tbody.innerHTML = body.data.map((r) => FW.logRow(r, true)).join("");
    } catch (err) {
      summary.textContent = "";
      FW.showError("Could not load the records of request " + id + ": " + err.message);
    }
  });
})();
