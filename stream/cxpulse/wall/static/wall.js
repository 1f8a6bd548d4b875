// The wall page: poll /api/wall, draw the rows. Colours and texts come from the
// server (stream/cxpulse/mixin/tiles.py), so this file only lays them out.
"use strict";
(function () {
  const refreshMs = Math.max(1, parseFloat(document.body.dataset.refresh) || 15) * 1000;
  const grid = document.getElementById("grid");
  const banner = document.getElementById("banner");
  const WORD = { ok: "on target", warn: "near limit", bad: "off target",
                 low_sample: "few samples", no_data: "no data", info: "" };
  const rotateMs = Math.max(1, parseFloat(document.body.dataset.rotate) || 15) * 1000;
  let lastOk = null;
  let last = null;  // the last snapshot drawn: rotating pages redraws it
  let page = 0;

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

  function hhmm(epoch) {
    const d = new Date(epoch * 1000);  // 24 h HH:MM whatever the browser's locale
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  // Scale the 1920x1080 layout to the screen; the longer side gets the extra room.
  function scaleToScreen() {
    const wall = document.getElementById("wall");
    const s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
    wall.style.width = window.innerWidth / s + "px";
    wall.style.height = window.innerHeight / s + "px";
    wall.style.transform = `scale(${s})`;
    document.body.dataset.scale = String(s);
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
    if (c.note) {  // no data from Prometheus, or only stale data: never a colour
      d.classList.add("greyed");
      d.dataset.note = c.note;
      const since = last && last.since ? `since ${hhmm(last.since)}` : "no data yet";
      sub.replaceChildren(el("span", "target", since));
      // "Prometheus unreachable" on two lines: one line is wider than a tile at 1920 px
      const [who, ...why] = c.note.split(" ");
      chg.replaceChildren(el("span", "chg", why.length ? who : ""));
      state.replaceChildren(el("span", "state", why.length ? why.join(" ") : c.note));
    }
    return d;
  }

  function px(name) {
    return parseFloat(getComputedStyle(document.documentElement).getPropertyValue(name));
  }

  // The height of a tile drawn at its readable minimum (wall.css: the title, the value at
  // --value-min-px, the three sub-lines, the padding): no row is ever shorter than this.
  function minRowHeight() {
    const probe = tile({ team: "" }, { colour: "no_data", key: "", description: "",
      title: "Probe", text: "0", target_text: "x", min_n: null, n: null, change_text: "x",
      spark: [] });
    probe.style.cssText = "position: absolute; visibility: hidden; left: 0; top: 0;";
    probe.querySelector(".v").style.cssText = "font-size: var(--value-min-px); flex: none;";
    probe.querySelector(".state").textContent = "x";
    grid.appendChild(probe);
    const h = probe.offsetHeight;  // layout px: the wall is scaled as a whole
    probe.remove();
    return h;
  }

  // How many teams a page holds: as many rows as fit the screen at the readable minimum,
  // one of them the organisation's; teams that do not fit go to equal pages that rotate.
  function layout(nTeams) {
    const cs = getComputedStyle(grid);
    const gap = parseFloat(cs.rowGap) || 0;
    const avail = grid.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    const minRow = minRowHeight();
    const perPage = Math.max(1, Math.floor((avail + gap) / (minRow + gap)) - 1);
    const pages = Math.max(1, Math.ceil(nTeams / perPage));
    const size = Math.max(1, Math.ceil(nTeams / pages));
    // Taller rows (fewer teams): a bigger value, up to --value-max-px.
    const vMin = px("--value-min-px"), vMax = px("--value-max-px");
    const rowH = (avail - gap * size) / (size + 1);
    const value = Math.floor((rowH - (minRow - vMin * 1.1)) / 1.1);
    return { pages, size, value: Math.max(vMin, Math.min(vMax, value)) };
  }

  function draw(snap) {
    last = snap;
    render();
  }

  // The organisation and the current page's teams; the header says which page it is.
  function render() {
    const snap = last;
    const org = snap.rows.filter((r) => r.team === "all");
    const teams = snap.rows.filter((r) => r.team !== "all");
    grid.replaceChildren();
    const lay = layout(teams.length);
    page %= lay.pages;
    const rows = [...org, ...teams.slice(page * lay.size, (page + 1) * lay.size)];
    // Every page has the same row height, also a last page with fewer teams.
    grid.style.gridTemplateRows = `repeat(${lay.size + org.length}, minmax(0, 1fr))`;
    // A column per tile of the snapshot; counts (a backlog, tickets at risk) are a few
    // digits and take a narrower one, so ten columns keep every title whole at 1920 px.
    grid.style.gridTemplateColumns = "var(--label-px) " + snap.columns
      .map((c) => (c.unit === "count" ? "minmax(0, 0.75fr)" : "minmax(0, 1fr)")).join(" ");
    const size = lay.value;
    grid.style.setProperty("--value-size", size + "px");
    for (const row of rows) {
      const name = el("div", "team" + (row.team === "all" ? " org" : ""), row.label);
      name.dataset.team = row.team;
      name.classList.add("row-label");
      grid.appendChild(name);
      for (const c of row.tiles) grid.appendChild(tile(row, c));
    }
    // Shrink what does not fit its tile's width (long durations) instead of clipping it.
    for (const v of grid.querySelectorAll(".v")) fit(v, size, 24);
    for (const s of grid.querySelectorAll(".tile .sub")) fit(s, px("--sub-px"), 14);
    // A long team name ("onboarding") takes a smaller size, down to the label minimum.
    for (const n of grid.querySelectorAll(".row-label")) {
      fit(n, parseFloat(getComputedStyle(n).fontSize), px("--title-px"));
    }
    const pageno = document.getElementById("pageno");
    pageno.hidden = lay.pages < 2;
    pageno.querySelector(".v").textContent = `${page + 1}/${lay.pages}`;
    document.body.dataset.page = String(page + 1);
    document.body.dataset.pages = String(lay.pages);
    const f = snap.freshness || { text: "?", colour: "no_data" };
    const fresh = document.getElementById("freshness");
    fresh.className = "fresh " + f.colour;
    fresh.querySelector(".v").textContent = f.text;
    const pages = document.getElementById("pages");
    pages.classList.toggle("unknown", snap.pages === null);
    pages.classList.toggle("firing", !!snap.pages && snap.pages.length > 0);
    pages.querySelector(".list").textContent = snap.pages === null ? "unknown"
      : snap.pages.length
        ? snap.pages.map((p) => (p.team ? `${p.alertname} (${p.team})` : p.alertname)).join(", ")
        : "none firing";
  }

  function showBanner(kind, text) {
    banner.hidden = !text;
    banner.className = "banner " + (kind || "");
    banner.dataset.state = kind || "ok";
    banner.textContent = text || "";
    document.body.classList.toggle("dim", kind === "stale");
  }

  async function tick() {
    document.getElementById("clock").textContent = new Date().toLocaleTimeString();
    try {
      const resp = await fetch("/api/wall", { cache: "no-store" });
      if (!resp.ok) throw new Error(`wall server answered ${resp.status}`);
      const snap = await resp.json();
      draw(snap);
      if (snap.status === "ok") lastOk = snap.generated_at;
      if (snap.status === "unreachable") {
        const when = snap.since ? `no data since ${hhmm(snap.since)}` : "no data yet";
        showBanner("unreachable", `${when} — ${snap.message}`);
      } else {
        showBanner(snap.status === "ok" ? "" : "stale", snap.message);
      }
    } catch (err) {
      if (last) {  // the numbers on screen are no longer live: grey them too
        const grey = (c) => ({ ...c, colour: "no_data", text: "no data", note: "wall server unreachable",
                               spark: [], change_text: "" });
        last = { ...last, since: lastOk, pages: null,
                 rows: last.rows.map((r) => ({ ...r, tiles: r.tiles.map(grey) })) };
        render();
      }
      const when = lastOk ? `no data since ${hhmm(lastOk)}` : "no data yet";
      showBanner("unreachable", `${when} — wall server unreachable`);
    }
    document.body.dataset.updated = String(Date.now());
  }

  scaleToScreen();
  window.addEventListener("resize", () => { scaleToScreen(); if (last) render(); });
  tick();
  setInterval(tick, refreshMs);
  setInterval(() => {
    if (!last) return;
    page += 1;
    render();
  }, rotateMs);
})();
