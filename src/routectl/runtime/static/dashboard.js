// routectl dashboard: plain JavaScript and SVG, no library, nothing fetched but /dashboard/data.
"use strict";

(function () {
  const KEY = "routectl.dashboard.key";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function usd(x) {
    if (x === 0) return "$0";
    return x < 0.01 ? "$" + x.toFixed(6) : "$" + x.toFixed(4);
  }

  function pct(x) {
    return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%";
  }

  function age(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }

  function clock(epoch) {
    return new Date(epoch * 1000).toISOString().slice(11, 19) + " UTC";
  }

  // bars: requests per bucket; line: cost per bucket (own scale)
  function chart(series, width, height) {
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    const n = series.length;
    const maxReq = Math.max(1, ...series.map((b) => b.requests));
    const maxCost = Math.max(...series.map((b) => b.cost));
    const w = width / n;
    root.appendChild(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#dde3ec" }));
    series.forEach((b, i) => {
      if (!b.requests) return;
      const h = Math.max(1, ((height - 4) * b.requests) / maxReq);
      const bar = svg("rect", { x: i * w + 0.5, y: height - h, width: Math.max(1, w - 1), height: h, fill: b.errors ? "#c53030" : "#3b6fd8", class: "bar" });
      const tip = svg("title");
      tip.textContent = `${clock(b.t)}: ${b.requests} requests, ${b.errors} errors, ${usd(b.cost)}`;
      bar.appendChild(tip);
      root.appendChild(bar);
    });
    if (maxCost > 0) {
      const points = series.map((b, i) => `${(i + 0.5) * w},${height - 2 - ((height - 6) * b.cost) / maxCost}`);
      root.appendChild(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#9b51e0", "stroke-width": 1.5, class: "cost-line" }));
    }
    return root;
  }

  function shareBar(configured, observed) {
    const root = svg("svg", { width: 90, height: 12, viewBox: "0 0 90 12" });
    root.appendChild(svg("rect", { x: 0, y: 0, width: 90, height: 12, fill: "#eef2f8" }));
    if (observed !== null) root.appendChild(svg("rect", { x: 0, y: 2, width: 90 * observed, height: 8, fill: "#3b6fd8" }));
    root.appendChild(svg("line", { x1: 90 * configured, y1: 0, x2: 90 * configured, y2: 12, stroke: "#18202f", "stroke-width": 2 }));
    return root;
  }

  function healthText(h) {
    if (h.state === "cooling_down") return "cooling down until " + clock(h.until);
    if (h.state === "failing") return "failing (" + h.recent_failures + " recent)";
    return h.state === "ok" ? "ok" : h.state;
  }

  function sum(series, field, last) {
    return series.slice(-last).reduce((a, b) => a + b[field], 0);
  }

  function renderCollection(c, bucket) {
    const card = el("section", { class: "card collection", "data-name": c.name });
    card.appendChild(el("h2", {}, c.display_name || c.name));
    const requests = sum(c.series, "requests", c.series.length);
    const sub = el("div", { class: "sub" });
    sub.append(
      el("span", { class: "name" }, "collection/" + c.name), " · strategy ",
      el("strong", { class: "strategy" }, c.strategy), " · " + c.scope + (c.owner ? " (" + c.owner + ")" : ""),
      " · ", el("span", { class: "window-requests" }, String(requests)), " requests, ",
      el("span", { class: "window-cost" }, usd(sum(c.series, "cost", c.series.length))), " in 15 min"
    );
    card.appendChild(sub);
    const grid = el("div", { class: "grid" });
    const table = el("table", { class: "members" });
    const head = el("tr");
    for (const [label, cls] of [["member", ""], ["weight", "num"], ["prio", "num"], ["configured", "num"], ["observed", "num"], ["", ""], ["req", "num"], ["health", ""], ["latency", "num"]]) {
      head.appendChild(el("th", cls ? { class: cls } : {}, label));
    }
    table.appendChild(head);
    for (const m of c.members) {
      const row = el("tr", { "data-model": m.model });
      row.appendChild(el("td", { class: "model" }, m.model));
      row.appendChild(el("td", { class: "num weight" }, String(m.weight)));
      row.appendChild(el("td", { class: "num priority" }, String(m.priority)));
      row.appendChild(el("td", { class: "num configured" }, pct(m.configured_share)));
      row.appendChild(el("td", { class: "num observed" }, pct(m.observed_share)));
      const bar = el("td", { class: "share" });
      bar.appendChild(shareBar(m.configured_share, m.observed_share));
      row.appendChild(bar);
      row.appendChild(el("td", { class: "num requests" }, String(m.requests)));
      const health = el("td", { class: "health" });
      const badge = el("span", { class: "badge h-" + m.health.state, "data-state": m.health.state }, healthText(m.health));
      if (m.health.reason) badge.title = m.health.reason;
      health.appendChild(badge);
      row.appendChild(health);
      row.appendChild(el("td", { class: "num latency" }, m.latency_ms === null ? "–" : m.latency_ms.toFixed(m.latency_ms < 10 ? 2 : 1) + " ms"));
      table.appendChild(row);
    }
    grid.appendChild(table);
    const side = el("div");
    side.appendChild(el("div", { class: "chart-title" }, `requests and cost per ${bucket} s, last 15 min`));
    side.appendChild(chart(c.series, 320, 70));
    grid.appendChild(side);
    card.appendChild(grid);
    return card;
  }

  function render(data) {
    $("table-sha").textContent = data.table.sha256.slice(0, 12);
    $("table-sha").title = data.table.sha256;
    $("table-age").textContent = age(data.table.age_s);
    $("caller").textContent = data.caller;
    $("updated").textContent = "updated " + clock(data.now);
    const t = data.totals;
    const perMin = (sum(t, "requests", 30) / 5).toFixed(1);
    $("rate").textContent = perMin;
    $("cost").textContent = usd(sum(t, "cost", t.length));
    $("errors").textContent = String(sum(t, "errors", t.length));
    const recent = t.slice(-30).filter((b) => b.requests);
    const reqs = recent.reduce((a, b) => a + b.requests, 0);
    $("latency").textContent = reqs ? (recent.reduce((a, b) => a + b.latency_ms * b.requests, 0) / reqs).toFixed(2) + " ms" : "–";
    const chartBox = $("totals-chart");
    chartBox.replaceChildren(chart(t, Math.max(300, chartBox.clientWidth || 900), 110));
    $("collections").replaceChildren(...data.collections.map((c) => renderCollection(c, data.bucket_s)));
    $("board").classList.remove("hidden");
    $("login").classList.add("hidden");
    document.body.setAttribute("data-loaded", "true");
  }

  async function refresh() {
    const key = sessionStorage.getItem(KEY);
    if (!key) return showLogin("");
    let resp;
    try {
      resp = await fetch("/dashboard/data", { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
    } catch (e) {
      $("error").textContent = "The server did not answer: " + e;
      return;
    }
    if (resp.status === 401) {
      sessionStorage.removeItem(KEY);
      return showLogin("That key is not valid (invalid_api_key).");
    }
    if (!resp.ok) {
      $("error").textContent = "The server answered " + resp.status;
      return;
    }
    $("error").textContent = "";
    render(await resp.json());
  }

  function showLogin(message) {
    if (timer) clearInterval(timer);
    timer = null;
    $("board").classList.add("hidden");
    $("login").classList.remove("hidden");
    $("error").textContent = message;
  }

  function start() {
    refresh();
    if (!timer) timer = setInterval(refresh, 2000);
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    start();
  });
  $("logout").addEventListener("click", (ev) => {
    ev.preventDefault();
    sessionStorage.removeItem(KEY);
    showLogin("");
  });
  if (sessionStorage.getItem(KEY)) start(); else showLogin("");
})();
