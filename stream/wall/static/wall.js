// The wall page: poll /api/wall, draw the rows. Colours and texts come from the
// server (stream/mixin/tiles.py), so this file only lays them out.
"use strict";
(function () {
  const refreshMs = Math.max(1, parseFloat(document.body.dataset.refresh) || 15) * 1000;
  const grid = document.getElementById("grid");
  const banner = document.getElementById("banner");
  const WORD = { ok: "on target", warn: "near limit", bad: "off target",
                 low_sample: "few samples", no_data: "no data", info: "" };
  let lastOk = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The last hours as a line over a faint area, behind the tile's lower half.
  function spark(values) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 100 100");
    svg.setAttribute("preserveAspectRatio", "none");
    const v = values.filter(Number.isFinite);
    if (v.length < 2) return svg;
    const lo = Math.min(...v), hi = Math.max(...v), span = hi - lo || 1;
    const pts = v.map((y, i) => `${(i / (v.length - 1)) * 100},${95 - ((y - lo) / span) * 90}`);
    const area = document.createElementNS(NS, "polygon");
    area.setAttribute("points", `0,100 ${pts.join(" ")} 100,100`);
    svg.appendChild(area);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
    return svg;
  }

  // Smaller type for a line that does not fit its tile, rather than a clipped number.
  function fit(e, px, min) {
    while ((e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight) && px > min) {
      px -= 1;
      e.style.fontSize = px + "px";
    }
  }

  function tile(row, c) {
    const d = el("div", "tile " + c.colour);
    d.dataset.team = row.team;
    d.dataset.key = c.key;
    d.dataset.colour = c.colour;
    d.title = c.description;
    d.appendChild(spark(c.spark || []));
    d.appendChild(el("div", "t", c.title));
    d.appendChild(el("div", "v", c.text));
    // One fact per line: the change against yesterday used to share a line with the
    // state word and lost its end at 1920 px (the header's legend says what it compares).
    const sub = el("div", "sub");
    sub.appendChild(el("span", "target", c.target_text || ""));
    sub.appendChild(el("span", "n", c.min_n !== null && c.n !== null ? `n=${Math.round(c.n)}` : ""));
    d.appendChild(sub);
    const chg = el("div", "sub");
    chg.appendChild(el("span", "chg", c.change_text || ""));
    d.appendChild(chg);
    const state = el("div", "sub");
    state.appendChild(el("span", "state", WORD[c.colour] || ""));
    d.appendChild(state);
    return d;
  }

  function draw(snap) {
    const rows = snap.rows;
    grid.replaceChildren();
    // Fewer rows: bigger numbers; many rows still fit 1080 px without scrolling.
    const size = Math.max(36, Math.min(72, Math.floor(400 / Math.max(rows.length, 1))));
    grid.style.setProperty("--value-size", size + "px");
    for (const row of rows) {
      const name = el("div", "team" + (row.team === "all" ? " org" : ""), row.label);
      name.dataset.team = row.team;
      name.classList.add("row-label");
      grid.appendChild(name);
      for (const c of row.tiles) grid.appendChild(tile(row, c));
    }
    // Shrink what does not fit its tile (long durations) instead of clipping it.
    for (const v of grid.querySelectorAll(".v")) fit(v, size, 24);
    for (const s of grid.querySelectorAll(".tile .sub")) fit(s, 20, 14);
    const f = snap.freshness || { text: "?", colour: "no_data" };
    const fresh = document.getElementById("freshness");
    fresh.className = "fresh " + f.colour;
    fresh.querySelector(".v").textContent = f.text;
    const pages = document.getElementById("pages");
    pages.classList.toggle("firing", snap.pages.length > 0);
    pages.querySelector(".list").textContent = snap.pages.length
      ? snap.pages.map((p) => (p.team ? `${p.alertname} (${p.team})` : p.alertname)).join(", ")
      : "none firing";
  }

  function showBanner(kind, text) {
    banner.hidden = !text;
    banner.className = "banner " + (kind || "");
    banner.dataset.state = kind || "ok";
    banner.textContent = text || "";
    document.body.classList.toggle("dim", kind === "unreachable" || kind === "stale");
  }

  function since() {
    return lastOk ? ` (last data ${new Date(lastOk * 1000).toLocaleTimeString()})` : "";
  }

  async function tick() {
    document.getElementById("clock").textContent = new Date().toLocaleTimeString();
    try {
      const resp = await fetch("/api/wall", { cache: "no-store" });
      if (!resp.ok) throw new Error(`wall server answered ${resp.status}`);
      const snap = await resp.json();
      if (snap.status === "unreachable") {
        showBanner("unreachable", `STALE: ${snap.message}${since()}`);
      } else {
        draw(snap);
        if (snap.status === "ok") lastOk = snap.generated_at;
        showBanner(snap.status === "ok" ? "" : "stale", snap.message);
      }
    } catch (err) {
      showBanner("unreachable", `STALE: wall server unreachable (${err.message})${since()}`);
    }
    document.body.dataset.updated = String(Date.now());
  }

  tick();
  setInterval(tick, refreshMs);
})();
