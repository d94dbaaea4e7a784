// wanwatch status page: polls /api/status every second and /api/history every 10 s,
// and draws everything with DOM calls (textContent only: lease hostnames come from
// DHCP clients and are never parsed as HTML). No library, no build step, no network
// beyond the daemon that served the page.
"use strict";

const STATUS_EVERY_MS = 1000;
const HISTORY_EVERY_MS = 10000;
const HOUR_S = 3600;
const SVG = "http://www.w3.org/2000/svg";

let history = { wans: {}, period_s: 10 };
let lastLogKey = "";
let lastTimelineKey = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function clock(epochS) {
  return new Date(epochS * 1000).toLocaleTimeString([], { hour12: false });
}

function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function size(n) {
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  for (const unit of ["KiB", "MiB", "GiB"]) {
    if (v < 1024) return `${v.toFixed(1)} ${unit}`;
    v /= 1024;
  }
  return `${v.toFixed(1)} TiB`;
}

function chart(title, series, now, kind) {
  const W = 360, H = 50;
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  // The last hour, or less while the daemon has not run that long.
  const first = series && series.t.length ? series.t[0] - history.period_s : now - HOUR_S;
  const span = Math.max(60, Math.min(HOUR_S, now - first));
  const x = (t) => ((t - (now - span)) / span) * W;
  const step = Math.max(1, (history.period_s / span) * W);
  let peak = 0;
  if (series) {
    series.t.forEach((t, i) => {
      if (series.state[i] === "down") {
        box.append(svg("rect", { class: "down", x: x(t) - step, y: 0, width: step, height: H }));
      }
    });
    if (kind === "rtt") {
      peak = Math.max(1, ...series.rtt_ms.filter((v) => v !== null)) * 1.2;
      let run = [];
      const flush = () => {
        if (run.length === 1) run.unshift(`${(parseFloat(run[0]) - step).toFixed(1)},${run[0].split(",")[1]}`);
        if (run.length) box.append(svg("polyline", { class: "rtt", points: run.join(" ") }));
        run = [];
      };
      series.t.forEach((t, i) => {
        const v = series.rtt_ms[i];
        if (v === null) flush();
        else run.push(`${x(t).toFixed(1)},${(H - (v / peak) * H).toFixed(1)}`);
      });
      flush();
    } else {
      peak = 100;
      series.t.forEach((t, i) => {
        const h = (series.loss_pct[i] / 100) * H;
        if (h > 0) box.append(svg("rect", { class: "loss", x: x(t) - step, y: H - h, width: step, height: h }));
      });
    }
  }
  const label = kind === "rtt" ? `max ${peak ? (peak / 1.2).toFixed(1) : "–"} ms` : "0–100 %";
  const last = span >= HOUR_S ? "last hour" : `last ${ago(span)}`;
  box.setAttribute("aria-label", `${title}, ${last}`);
  return el("div", { class: "chart" }, el("div", { class: "title" }, el("span", {}, `${title}, ${last}`), el("span", {}, label)), box);
}

function fact(name, value) {
  return el("div", {}, el("dt", {}, name), el("dd", {}, value));
}

// What the health machine is in the middle of: losses towards DOWN, answers towards
// UP, or the hold before failback (status.UplinkStatus.phase/progress).
function phase(w) {
  const p = w.progress || {};
  if (w.phase === "suspect") return ` · suspect: ${p.lost}/${p.needed} lost`;
  if (w.phase === "rising") return ` · rising: ${p.good}/${p.needed} good`;
  if (w.phase === "hold") return ` · hold: ${Math.ceil(p.hold_left_s)} s left`;
  return "";
}

// A data quota's bar (status.QuotaStatus): a native <meter>, its "high" at the warning level.
function quotaBar(q) {
  const until = q.period_end ? `until ${new Date(q.period_end).toLocaleDateString()}` : "prepaid";
  const used = q.state === "exhausted" ? ` · used up: ${q.exhausted}` : "";
  return el("p", { class: `quota ${q.state}` },
    el("meter", { min: "0", max: String(q.limit), high: String(q.warn * q.limit), optimum: "0",
                  value: String(Math.min(q.used, q.limit)), title: `${size(q.used)} of ${size(q.limit)}` }),
    ` quota ${size(q.used)} of ${size(q.limit)} (${Math.round(100 * q.used / q.limit)} %) ${until}${used}`,
  );
}

function wanCard(w, st, now) {
  const probes = w.probes || {};
  const counters = (st.counters || {})[w.name];
  const badges = [el("span", { class: `badge ${w.state}` }, w.state)];
  if (w.admin && w.admin !== "enabled") badges.push(el("span", { class: "badge down" }, w.admin));
  if (w.carrying) badges.push(el("span", { class: "badge carrying" }, "carrying"));
  // IPv6 is chosen by its own policy (docs/ipv6.md): it may be carried elsewhere.
  if (w.carrying6) badges.push(el("span", { class: "badge carrying" }, "carrying IPv6"));
  else if (w.state === "up" && w.preferred === false) badges.push(el("span", { class: "badge" }, "hold"));
  const facts = el("dl", { class: "facts" },
    fact("RTT", w.rtt_ms === null ? "–" : `${w.rtt_ms.toFixed(1)} ms`),
    fact("loss", `${w.loss_pct.toFixed(1)} %`),
    fact("probes", `${probes.replies ?? 0} / ${probes.sent ?? 0}`),
  );
  const families = w.families || {};
  if (families["4"] && families["6"]) facts.append(fact("IPv4 / IPv6", `${families["4"]} / ${families["6"]}`));
  if (counters) {
    facts.append(
      fact("connections", counters.connections),
      fact("in / out", `${size(counters.bytes_in)} / ${size(counters.bytes_out)}`),
    );
  }
  const since = new Date(w.since).getTime() / 1000;
  const series = history.wans[w.name];
  return el("article", { class: "wan", "data-wan": w.name, "data-state": w.state, "data-carrying": String(!!w.carrying) },
    el("h3", {}, w.name, ...badges),
    el("p", { class: "since" }, `${w.state} since ${clock(since)} (${ago(w.for_s ?? now - since)})${phase(w)}`),
    // A used-up quota: where the carrier sends the web (status.UplinkStatus.portal_url).
    ...(w.portal_url ? [el("p", { class: "portal" }, "captive portal: web sent to ", el("code", {}, w.portal_url))] : []),
    ...(w.quota ? [quotaBar(w.quota)] : []),
    facts,
    chart("RTT", series, now, "rtt"),
    chart("loss", series, now, "loss"),
  );
}

function timelineItem(e) {
  const failover = e.kind === "policy.failover";
  const what = `${e.from || "–"} → ${e.to || "–"}`;
  const why = failover && e.cause ? ` · ${e.cause} ${e.reason || ""}${e.detect_ms != null ? `, detected in ${e.detect_ms} ms` : ""}` : "";
  return el("li", { class: failover ? "failover" : "failback" },
    el("span", { class: "time" }, clock(e.at)),
    el("span", { class: "kind" }, failover ? "failover " : "failback "),
    what + why);
}

function leasesBlock(leases) {
  const box = document.getElementById("leases");
  box.replaceChildren();
  if (!leases || leases.length === 0) {
    box.append(el("p", { class: "empty" }, "no leases"));
    return;
  }
  const byLan = new Map();
  for (const l of leases) {
    if (!byLan.has(l.lan)) byLan.set(l.lan, []);
    byLan.get(l.lan).push(l);
  }
  for (const [lan, rows] of byLan) {
    const table = el("table", {}, el("caption", {}, `${lan} (${rows.length})`),
      el("tr", {}, el("th", {}, "address"), el("th", {}, "hostname"), el("th", {}, "MAC"), el("th", {}, "expires in")));
    for (const l of rows) {
      table.append(el("tr", {}, el("td", {}, l.address), el("td", {}, l.hostname || "–"), el("td", {}, l.mac),
        el("td", {}, l.remaining_s == null ? "never" : ago(l.remaining_s))));
    }
    box.append(el("div", { class: "table-wrap" }, table));
  }
}

// The firewall's counters (status.FirewallStatus): what it dropped per uplink and isolated
// LAN, what each port forward took; none from a daemon older than the firewall.
function firewallLine(fw) {
  if (!fw) return "";
  const parts = [];
  for (const [wan, d] of Object.entries(fw.dropped)) parts.push(`${wan} ${d.input} to the router, ${d.forward} through`);
  for (const [lan, n] of Object.entries(fw.guests)) parts.push(`guest ${lan} ${n}`);
  let line = fw.enabled ? `firewall on · dropped: ${parts.join(" · ")}` : "firewall off";
  const fwd = Object.entries(fw.forwards).map(([name, n]) => `${name} ${n}`);
  if (fwd.length) line += ` · forwarded connections: ${fwd.join(", ")}`;
  return line;
}

// The policy rules (status.RulesStatus): each one's path now, why, and what it carried,
// IPv6's after IPv4's where it differs; hidden without rules (or from an older daemon).
function rulesBlock(rs) {
  const box = document.getElementById("rules");
  box.hidden = !rs;
  if (!rs) return;
  const table = el("table", {},
    el("tr", {}, el("th", {}, "rule"), el("th", {}, "path"), el("th", {}, "why"),
      el("th", {}, "connections"), el("th", {}, "in / out")));
  const where = (kind, uplinks) =>
    kind === "block" ? "block" : `${kind === "uplink" ? "" : `${kind} `}${uplinks.join(" + ")}`;
  for (const r of rs.rules) {
    let path = where(r.path, r.uplinks), why = r.why;
    if (r.families.join() === "6" && rs.families.includes(4)) {
      path = `IPv6 ${path}`;  // an IPv6-only rule, as in plan --matrix
    }
    if (r.path6 != null) {
      path += `; IPv6 ${where(r.path6, r.uplinks6 || [])}`;
      if (r.why6 != null) why += `; IPv6: ${r.why6}`;
    }
    const t = r.traffic;
    table.append(el("tr", { "data-rule": r.name, "data-path": r.path },
      el("td", {}, r.name), el("td", {}, path), el("td", {}, why),
      el("td", {}, t.connections), el("td", {}, `${size(t.bytes_in)} / ${size(t.bytes_out)}`)));
  }
  document.getElementById("rules-table").replaceChildren(el("div", { class: "table-wrap" }, table));
}

// The router pair's role as keepalived last announced it (linux/pair.py); none without a pair.
function pairLine(ha) {
  if (!ha) return "";
  const dhcp = ha.serving_dhcp ? "serving DHCP" : "not serving DHCP";
  return `pair: ${ha.role || "not announced yet"} · ${dhcp} · uplinks down for VRRP: ${ha.uplinks_down}`;
}

function render(st) {
  const now = Date.now() / 1000;
  let active = st.active.length ? st.active.join(", ") : "none";
  const active6 = st.active6 || [];
  if (active6.length && active6.join() !== st.active.join()) active += ` · IPv6: ${active6.join(", ")}`;
  document.getElementById("active").textContent = active;
  const healthy = st.wans.every((w) => w.state === "up");
  document.getElementById("now").dataset.state = st.stale ? "stale" : healthy ? "primary" : "backup";
  const sub = [`mode ${st.mode}`];
  if (st.stale) sub.push("no healthy uplink: last choice kept");
  if (st.backend_error) sub.push(`backend error: ${st.backend_error}`);
  for (const [step, error] of Object.entries(st.failed_steps || {})) sub.push(`not applied: ${step}: ${error}`);
  document.getElementById("mode").textContent = sub.join(" · ");
  document.getElementById("wans").replaceChildren(...st.wans.map((w) => wanCard(w, st, now)));
  document.getElementById("firewall").textContent = firewallLine(st.firewall);
  document.getElementById("pair").textContent = pairLine(st.ha);
  rulesBlock(st.rules);

  const timeline = st.timeline || [];
  const tKey = timeline.length ? `${timeline.length}:${timeline[timeline.length - 1].at}` : "";
  if (tKey !== lastTimelineKey) {
    lastTimelineKey = tKey;
    const list = document.getElementById("timeline");
    list.replaceChildren(...timeline.slice().reverse().map(timelineItem));
    if (!timeline.length) list.append(el("li", { class: "empty" }, "none since the daemon started"));
  }
  leasesBlock(st.leases);
  const log = st.log || [];
  const lKey = log.length ? `${log.length}:${log[log.length - 1].at}:${log[log.length - 1].text}` : "";
  if (lKey !== lastLogKey) {
    lastLogKey = lKey;
    document.getElementById("log").replaceChildren(...log.slice().reverse().map((e) =>
      el("li", {}, el("span", { class: "time" }, clock(e.at)), e.text)));
  }
}

function connected(ok, detail) {
  const c = document.getElementById("conn");
  c.dataset.ok = String(ok);
  c.textContent = detail;
}

async function getJSON(path) {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function pollHistory() {
  try {
    history = await getJSON("api/history");
  } catch (err) {
    // the status poll reports the daemon unreachable; keep the last charts
  }
  setTimeout(pollHistory, HISTORY_EVERY_MS);
}

async function pollStatus() {
  try {
    const st = await getJSON("api/status");
    render(st);
    connected(true, `pid ${st.pid} · up ${ago(st.uptime_s)} · updated ${clock(Date.now() / 1000)}`);
  } catch (err) {
    connected(false, `daemon unreachable (${err.message}); retrying`);
  }
  setTimeout(pollStatus, STATUS_EVERY_MS);
}

pollHistory();
pollStatus();
