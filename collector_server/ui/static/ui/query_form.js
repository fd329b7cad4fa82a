/* Metric query fields with autocomplete (explorer and rule editor). */
"use strict";
FW.queryForm = function (form) {
  const f = form.elements;
  async function names() {
    try {
      const body = await FW.api("/ui/api/metric-names?prefix=" + encodeURIComponent(f.metric.value));
      document.getElementById("metric-names").innerHTML = body.data.map((m) => '<option value="' + FW.esc(m.name) + '">' + FW.esc(m.kind) + "</option>").join("");
    } catch (err) { /* autocomplete is a convenience: the query itself reports errors */ }
  }
  async function labels() {
    if (!f.metric.value) return;
    try {
      const body = await FW.api("/ui/api/labels?metric=" + encodeURIComponent(f.metric.value));
      const l = body.data.labels;
      document.getElementById("label-names").innerHTML = Object.keys(l).map((k) => '<option value="' + FW.esc(k) + '">').join("");
      const pairs = [];
      Object.keys(l).forEach((k) => l[k].slice(0, 20).forEach((v) => pairs.push(k + "=" + v)));
      document.getElementById("label-pairs").innerHTML = pairs.map((p) => '<option value="' + FW.esc(p) + '">').join("");
    } catch (err) { /* as above */ }
  }
  f.metric.addEventListener("input", names);
  f.metric.addEventListener("change", labels);
  names();
  labels();
  return {
    matchers: () => (f.match.value.match(/[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"[^"]*"|\S*)/g) || []),
  };
};
