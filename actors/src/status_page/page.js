// The status page: renders each snapshot the daemon streams (Server-Sent
// Events), paints the headline's tone on the page and the favicon, and
// shows a notice when the headline changes.
"use strict";

const TONES = { idle: "#6b7280", busy: "#2563eb", good: "#15803d", held: "#b45309", bad: "#b91c1c" };
const ADMIN = location.pathname.startsWith("/admin/");
let shown = null;      // the headline state on screen
let lastSnapshot = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function cls(state) {
  if (["Online", "Normal", "Up"].includes(state)) return "st ok";
  if (["Online Failure", "Offline Failure", "Error", "Down", "Isolated"].includes(state)) return "st err";
  if (["Warning", "Online Pending", "Offline Pending", "Suspended", "Unknown"].includes(state)) return "st warn";
  return "st mute";
}

// The status JSON spells run states as in Rust (OnlinePending); the page
// as `understudy status` does.
function spell(s) { return String(s).replace(/([a-z])([A-Z])/g, "$1 $2"); }

function favicon(tone) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="${TONES[tone] || TONES.idle}"/></svg>`;
  $("favicon").href = "data:image/svg+xml," + encodeURIComponent(svg);
}

function setHeadline(h) {
  document.body.className = "tone-" + h.tone;
  const head = $("headline");
  head.textContent = h.title;
  head.dataset.state = h.state;
  $("detail").textContent = h.detail;
  favicon(h.tone);
  if (shown !== null && shown !== h.state) {
    const t = new Date().toLocaleTimeString();
    $("notice-text").textContent = `${t} — ${h.title}: ${h.detail}`;
    $("notice").dataset.state = h.state;
    $("notice").hidden = false;
  }
  if (shown !== h.state) head.dataset.changedAt = String(Date.now());
  shown = h.state;
  document.title = `${h.title} — understudy`;
}

function fill(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows);
}

function render(snap) {
  lastSnapshot = snap;
  setHeadline(snap.headline);
  const s = snap.status;
  if (!s) return;
  $("cluster").textContent = s.cluster;
  $("server").textContent = "· seen from " + s.server;
  fill("servers", s.servers.map((v) => el("tr", { id: "server-" + v.name, "data-state": v.state },
    el("td", {}, v.name + (v.local ? " (this server)" : "") + (v.config_mismatch ? " — another configuration" : "")),
    el("td", { class: cls(v.state) }, v.state),
    el("td", {}, ...v.paths.map((p) => el("span", { class: "path" },
      el("span", { class: cls(p.state) }, p.state), ` ${p.address} (${p.received} received, ${p.lost} lost)`))))));
  const now = String(Date.now());
  fill("groups", s.groups.map((g) => {
    const state = spell(g.state);
    const on = g.current || "–";
    const old = document.getElementById("group-" + g.name);
    const changed = !old || old.dataset.current !== on || old.dataset.state !== state;
    return el("tr", { id: "group-" + g.name, "data-state": state, "data-current": on,
                      "data-changed-at": changed ? now : old.dataset.changedAt },
      el("td", {}, g.name), el("td", { class: cls(state) }, state), el("td", { class: "current" }, on),
      el("td", {}, ...g.resources.map((r) => el("span", { class: "res" },
        `${r.name} [${r.kind}] `, el("span", { class: cls(spell(r.state)) }, spell(r.state)),
        r.last_error ? ` — ${r.last_error}` : ""))));
  }));
  fill("monitors", s.monitors.map((m) => el("tr", { id: "monitor-" + m.name, "data-state": m.state },
    el("td", {}, m.name), el("td", {}, m.kind),
    el("td", { class: cls(m.state) }, m.runs_here ? m.state : "not here"),
    el("td", {}, m.target || "–"), el("td", {}, m.recovery_target),
    el("td", {}, m.reactivations), el("td", {}, m.failovers), el("td", {}, m.last_error || ""))));
  fill("alerts", snap.alerts.map((a) => el("tr", {},
    el("td", {}, a.time), el("td", {}, a.server),
    el("td", { class: a.level === "Error" ? "st err" : a.level === "Warning" ? "st warn" : "" }, a.level),
    el("td", {}, `${a.module} ${a.event_id}`), el("td", {}, a.message))));
  const sel = $("recover-server");
  const choice = sel.value;
  sel.replaceChildren(...s.servers.map((v) => el("option", { value: v.name }, `${v.name} (${v.state})`)));
  if (choice) sel.value = choice;
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("snapshot", (e) => {
    $("link").textContent = "live";
    render(JSON.parse(e.data));
  });
  source.onerror = () => {
    // EventSource tries again by itself; meanwhile nothing answers.
    $("link").textContent = "no answer, retrying";
    if (lastSnapshot && lastSnapshot.no_service) setHeadline(lastSnapshot.no_service);
  };
}

async function act(path, body, what) {
  $("act-result").textContent = what + "…";
  try {
    const r = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-Understudy-Action": "1", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const text = await r.text();
    $("act-result").textContent = (r.ok ? "" : `refused (${r.status}): `) + text;
    return r.ok ? text : null;
  } catch (e) {
    $("act-result").textContent = "no answer: " + e;
    return null;
  }
}

function admin() {
  $("admin").hidden = false;
  $("admin-link").hidden = true;
  $("act-settings").onclick = async () => {
    const text = await act("/admin/alert-settings", undefined, "Reading the report settings");
    if (text !== null) { $("settings").textContent = text; $("settings").hidden = false; $("act-result").textContent = ""; }
  };
  $("act-suspend").onclick = () => act("/admin/reporting", { suspend: true }, "Suspending reporting");
  $("act-resume").onclick = () => act("/admin/reporting", { suspend: false }, "Resuming reporting");
  $("act-recover").onclick = () => act("/admin/recover", { server: $("recover-server").value }, "Recovering");
  $("act-shutdown").onclick = () => {
    const name = lastSnapshot && lastSnapshot.status ? lastSnapshot.status.cluster : "";
    const typed = prompt(`Cluster shutdown stops every group and shuts down the OS of every server of cluster "${name}".\nType the cluster's name to go on:`);
    if (typed === null) return;
    act("/admin/shutdown", { confirm: typed }, "Shutting the cluster down");
  };
}

$("notice-close").onclick = () => { $("notice").hidden = true; };
if (ADMIN) admin();
connect();
