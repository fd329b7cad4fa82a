/* The metric explorer: the URL holds the query (metric, match[], agg, by, step, range). */
"use strict";
(function () {
  const form = document.getElementById("explore");
  const f = form.elements;
  const fields = FW.queryForm(form);
  const chart = FW.chart(document.getElementById("explore-chart"));
  const p = new URLSearchParams(location.search);
  f.metric.value = p.get("metric") || "system_cpu_usage_percent";
  f.match.value = p.getAll("match[]").join(" ");
  f.agg.value = p.get("agg") || "avg";
  f.by.value = p.get("by") || "";
  f.step.value = p.get("step") || "";

  function queryString() {
    const q = new URLSearchParams();
    q.set("metric", f.metric.value.trim());
    fields.matchers().forEach((m) => q.append("match[]", m));
    q.set("agg", f.agg.value);
    if (f.by.value.trim()) q.set("by", f.by.value.trim());
    if (f.step.value.trim()) q.set("step", f.step.value.trim());
    return q;
  }

  function table(data) {
    const tbody = document.querySelector("#explore-table tbody");
    if (!data) { tbody.innerHTML = ""; return; }
    tbody.innerHTML = data.series.map((s, i) => {
      const vals = s.values.filter((v) => v != null);
      const sum = vals.reduce((a, b) => a + b, 0);
      return '<tr><td><span class="swatch" style="background:' + FW.color(i) + '"></span>' + FW.esc(s.label) + "</td><td>" +
        FW.fmt(vals[vals.length - 1]) + "</td><td>" + FW.fmt(Math.min.apply(null, vals)) + "</td><td>" +
        FW.fmt(vals.length ? sum / vals.length : null) + "</td><td>" + FW.fmt(Math.max.apply(null, vals)) + "</td></tr>";
    }).join("") || '<tr><td colspan="5" class="muted">No series match.</td></tr>';
  }

  async function run() {
    const q = queryString();
    table(await chart.load("/ui/api/chart?" + q));
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = queryString();
    const keep = new URLSearchParams(location.search);
    ["range", "start", "end"].forEach((k) => keep.get(k) && q.set(k, keep.get(k)));
    history.replaceState(null, "", location.pathname + "?" + q);
    run();
  });
  FW.onRefresh(run);
})();
