/* The rule editor: a metric rule's query from fields, a preview chart with the threshold, the groups that would fire. */
"use strict";
(function () {
  const API = "/api/v1/monitoring/rules";
  const form = document.getElementById("rule");
  const f = form.elements;
  const ruleId = form.dataset.ruleId;
  const fields = FW.queryForm(form);
  const chart = FW.chart(document.getElementById("rule-chart"));
  // The chart's aggregations are the query engine's; a rule's "increase" is drawn as a rate.
  const CHART_AGG = { increase: "rate" };

  function matchers() {
    return fields.matchers().map((text) => {
      const m = text.match(/^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$/);
      return { name: m[1], op: m[2], value: m[3].replace(/^"(.*)"$/, "$1") };
    });
  }

  function body() {
    const by = f.by.value.split(",").map((s) => s.trim()).filter(Boolean);
    const out = {
      name: f.name.value,
      severity: f.severity.value,
      enabled: f.enabled.checked,
      query_type: "metric",
      query: { metric: f.metric.value.trim(), matchers: matchers(), aggregation: f.agg.value, window: parseInt(f.window.value, 10), group_by: by },
      comparison: f.comparison.value,
      threshold: parseFloat(f.threshold.value),
      recovery_threshold: f.recovery_threshold.value === "" ? null : parseFloat(f.recovery_threshold.value),
      for_seconds: parseInt(f.for_seconds.value || "0", 10),
    };
    return out;
  }

  function fill(rule) {
    f.name.value = rule.name;
    f.severity.value = rule.severity;
    f.enabled.checked = rule.enabled;
    f.comparison.value = rule.comparison;
    f.threshold.value = rule.threshold;
    f.recovery_threshold.value = rule.recovery_threshold == null ? "" : rule.recovery_threshold;
    f.for_seconds.value = rule.for_seconds;
    if (rule.query_type !== "metric") {
      FW.flash("This is a " + rule.query_type + " rule: edit it in the admin.", false);
      Array.from(f).forEach((el) => (el.disabled = true));
      return;
    }
    const q = rule.query;
    f.metric.value = q.metric;
    f.match.value = (q.matchers || []).map((m) => m.name + m.op + (m.value === "" ? '""' : m.value)).join(" ");
    f.agg.value = q.aggregation;
    f.window.value = q.window;
    f.by.value = (q.group_by || []).join(",");
    f.metric.dispatchEvent(new Event("change"));
  }

  async function preview() {
    const b = body();
    const q = new URLSearchParams({ metric: b.query.metric, agg: CHART_AGG[b.query.aggregation] || b.query.aggregation });
    fields.matchers().forEach((m) => q.append("match[]", m));
    if (b.query.group_by.length) q.set("by", b.query.group_by.join(","));
    chart.thresholds = [b.threshold].concat(b.recovery_threshold == null ? [] : [b.recovery_threshold]);
    const tbody = document.querySelector("#rule-groups tbody");
    const drawing = chart.load("/ui/api/chart?" + q + "&start=" + Math.floor(Date.now() / 1000 - 6 * 3600));
    try {
      // The preview validates an unsaved rule: a unique name keeps it from clashing with the saved one.
      const unsaved = Object.assign({}, b, { name: ("preview " + Date.now() + " " + b.name).slice(0, 200) });
      const result = await FW.api(API + "/preview", { method: "POST", body: unsaved });
      tbody.innerHTML = result.data.length ? result.data.map((g) =>
        '<tr data-breaches="' + g.breaches + '"><td>' + FW.esc(Object.keys(g.labels).map((k) => k + "=" + g.labels[k]).join(", ") || "(all)") +
        "</td><td>" + FW.fmt(g.value) + "</td><td>" + (g.breaches == null ? "no data" : g.breaches ?
          (b.for_seconds ? "would fire after " + b.for_seconds + " s pending" : "would fire") : "ok") + "</td></tr>").join("")
        : '<tr><td colspan="3" class="muted">No matching series.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="3" class="error">Cannot evaluate: ' + FW.esc(err.message) + "</td></tr>";
    }
    await drawing;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const saved = await FW.api(ruleId ? API + "/" + ruleId : API, { method: ruleId ? "PATCH" : "POST", body: body() });
      FW.flash("Rule saved.", true);
      const rule = saved.data || saved;
      if (!ruleId && rule.id) location.assign("/rules/" + rule.id + "/");
    } catch (err) {
      FW.flash("Could not save the rule: " + err.message, false);
    }
  });
  document.getElementById("rule-preview").addEventListener("click", preview);

  (async function init() {
    if (ruleId) {
      try { const got = await FW.api(API + "/" + ruleId); fill(got.data || got); } catch (err) { FW.showError("Could not load rule " + ruleId + ": " + err.message); return; }
    } else {
      f.metric.value = "system_cpu_usage_percent";
      f.by.value = "host";
    }
    if (f.metric.value) preview();
  })();
})();
