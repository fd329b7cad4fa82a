/* The alerts page: active and past alerts, acknowledge / resolve / silence, silences, history. */
"use strict";
(function () {
  const API = "/api/v1/monitoring";
  const form = document.getElementById("alert-filters");
  const q = new URLSearchParams(location.search);
  ["severity", "status", "host", "rule"].forEach((k) => { if (q.get(k)) form.elements[k].value = q.get(k); });
  let alerts = {};
  const rows = (body) => body.data || body.results || [];
  const STATES_OF = { "": "state=pending&state=firing", firing: "state=firing", pending: "state=pending",
    acknowledged: "state=firing", silenced: "state=firing", resolved: "state=resolved" };

  function filters() {
    const f = form.elements;
    let query = STATES_OF[f.status.value] || STATES_OF[""];
    ["severity", "host", "rule"].forEach((k) => { if (f[k].value) query += "&" + k + "=" + encodeURIComponent(f[k].value); });
    return query;
  }

  function actions(a) {
    if (!FW.canOperate) return "";
    const b = [];
    if (a.status === "firing") b.push('<button type="button" data-act="ack" data-id="' + a.id + '">Acknowledge</button>');
    if (a.state === "pending") b.push('<span class="muted small" title="An alert can be acknowledged once it fires: its rule\'s for-duration has not passed yet.">pending: acknowledge once firing</span>');
    if (a.state === "firing" || a.state === "pending") b.push('<button type="button" data-act="resolve" data-id="' + a.id + '">Resolve</button>');
    if (a.state !== "resolved") b.push('<button type="button" data-act="silence" data-id="' + a.id + '">Silence</button>');
    return "<td>" + b.join(" ") + "</td>";
  }

  function statusCell(a) {
    let text = '<span class="status ' + FW.esc(a.status) + '">' + FW.esc(a.status) + "</span>";
    if (a.acknowledged_at) text += ' <span class="muted small">by ' + FW.esc(a.acknowledged_by) + (a.ack_comment ? ": " + FW.esc(a.ack_comment) : "") + "</span>";
    if (a.rule) text += ' <a class="small" href="/rules/' + a.rule + '/">rule</a>';
    if (a.logs_url) text += ' <a class="small" href="' + FW.esc(a.logs_url) + '">logs</a>';
    return text;
  }

  async function loadAlerts() {
    const tbody = document.querySelector("#alerts tbody");
    const wanted = form.elements.status.value;
    try {
      const body = await FW.api(API + "/alerts?limit=200&" + filters());
      let list = rows(body);
      if (wanted === "firing" || wanted === "acknowledged" || wanted === "silenced") list = list.filter((a) => a.status === wanted);
      alerts = {};
      list.forEach((a) => (alerts[a.id] = a));
      document.getElementById("alerts-count").textContent = list.length + " shown";
      const cols = FW.canOperate ? 7 : 6;
      tbody.innerHTML = list.length ? list.map((a) =>
        '<tr data-alert="' + a.id + '" data-status="' + FW.esc(a.status) + '"><td><span class="sev ' + FW.esc(a.severity) + '">' + FW.esc(a.severity) +
        "</span></td><td><strong>" + FW.esc(a.name) + "</strong> " + FW.esc(a.summary || "") + "</td><td>" +
        (a.labels.host ? '<a href="/hosts/' + encodeURIComponent(a.labels.host) + '/">' + FW.esc(a.labels.host) + "</a>" : "") +
        "</td><td>" + statusCell(a) + '</td><td class="nowrap">' + FW.ago(a.fired_at || a.created_at) + "</td><td>" +
        FW.fmt(a.value) + "</td>" + actions(a) + "</tr>").join("")
        : '<tr><td colspan="' + cols + '" class="muted">No alerts match.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="7" class="error">Could not load the alerts: ' + FW.esc(err.message) + "</td></tr>";
    }
  }

  async function loadSilences() {
    const tbody = document.querySelector("#silences tbody");
    try {
      const list = rows(await FW.api(API + "/silences?limit=100"));
      tbody.innerHTML = list.length ? list.map((s) =>
        '<tr data-silence="' + s.id + '"><td>' + s.matchers.map((m) => '<code>' + FW.esc(m.name + m.op + m.value) + "</code>").join(" ") +
        "</td><td>" + FW.time(s.ends_at) + "</td><td>" + FW.esc(s.created_by) + "</td><td>" + FW.esc(s.comment) +
        "</td><td>" + (s.active ? "active" : "inactive") + "</td>" +
        (FW.canOperate ? "<td>" + (s.active ? '<button type="button" data-act="expire" data-id="' + s.id + '">Expire</button>' : "") + "</td>" : "") +
        "</tr>").join("") : '<tr><td colspan="6" class="muted">No silences.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="6" class="error">Could not load the silences: ' + FW.esc(err.message) + "</td></tr>";
    }
  }

  async function loadHistory() {
    const tbody = document.querySelector("#history tbody");
    const f = form.elements;
    let query = "limit=50";
    if (f.host.value) query += "&host=" + encodeURIComponent(f.host.value);
    if (f.rule.value) query += "&rule=" + encodeURIComponent(f.rule.value);
    try {
      const list = rows(await FW.api(API + "/alerts/history?" + query));
      tbody.innerHTML = list.length ? list.map((e) =>
        '<tr><td class="nowrap">' + FW.time(e.at) + "</td><td>" + FW.esc((e.alert_name || e.alert || "")) + "</td><td>" +
        FW.esc(e.from_state || "–") + " → " + FW.esc(e.to_state) + "</td><td>" + FW.esc(e.actor || "") + "</td><td>" +
        FW.esc(e.note || "") + "</td></tr>").join("") : '<tr><td colspan="5" class="muted">No history.</td></tr>';
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="5" class="error">Could not load the history: ' + FW.esc(err.message) + "</td></tr>";
    }
  }

  async function act(label, url, bodyData, method) {
    try {
      const body = await FW.api(url, { method: method || "POST", body: bodyData || {} });
      FW.flash((body && body.message) || label + " done", true);
    } catch (err) {
      FW.flash("Could not " + label + ": " + err.message, false);
    }
    FW.refresh();
  }

  function askAck(a) {
    const dialog = document.getElementById("ack-dialog");
    dialog.querySelector("#ack-what").textContent = a.name + " " + (a.labels.host || "");
    dialog.querySelector("textarea").value = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "ok") {
        act("acknowledge alert " + a.id, API + "/alerts/" + a.id + "/acknowledge", { comment: dialog.querySelector("textarea").value });
      }
    };
    dialog.returnValue = "";
    dialog.showModal();
  }

  function parseMatchers(text) {
    return text.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
      const m = l.match(/^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$/);
      if (!m) throw new Error(l + " is not label=value, label!=value, label=~regex or label!~regex");
      return { name: m[1], op: m[2], value: m[3].replace(/^"(.*)"$/, "$1") };
    });
  }

  function askSilence(a) {
    const dialog = document.getElementById("silence-dialog");
    const f = dialog.querySelector("form").elements;
    const keep = Object.keys(a.labels).filter((k) => k !== "severity");
    f.matchers.value = keep.map((k) => k + "=" + a.labels[k]).join("\n");
    f.comment.value = "";
    dialog.onclose = () => {
      if (dialog.returnValue !== "ok") return;
      let matchers;
      try { matchers = parseMatchers(f.matchers.value); } catch (err) { FW.flash("Could not create the silence: " + err.message, false); return; }
      const ends = new Date(Date.now() + parseInt(f.duration.value, 10) * 3600 * 1000).toISOString();
      act("create the silence", API + "/silences", { matchers: matchers, ends_at: ends, comment: f.comment.value });
    };
    dialog.returnValue = "";
    dialog.showModal();
  }

  document.getElementById("main").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const id = b.dataset.id, a = alerts[id];
    if (b.dataset.act === "ack") askAck(a);
    else if (b.dataset.act === "resolve") act("resolve alert " + id, API + "/alerts/" + id + "/resolve");
    else if (b.dataset.act === "silence") askSilence(a);
    else if (b.dataset.act === "expire") act("expire silence " + id, API + "/silences/" + id, { ends_at: new Date().toISOString() }, "PATCH");
  });
  form.addEventListener("change", () => {
    const p = new URLSearchParams();
    ["severity", "status", "host", "rule"].forEach((k) => { if (form.elements[k].value) p.set(k, form.elements[k].value); });
    history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p : ""));
    FW.refresh();
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());
  FW.onRefresh(loadAlerts);
  FW.onRefresh(loadSilences);
  FW.onRefresh(loadHistory);
})();
