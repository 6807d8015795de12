/* fleet HTML report: the cluster table (filter, search, sort, pages), the drill-down, CSV export.
   Vanilla JavaScript over the packed data in #fleet-data (see fleet/report/html.py for the
   layout). Scale: rows stay integer arrays; only one page of <tr> exists at a time; search is
   debounced and runs over lower-cased text built once, on first use. No network, no eval, no
   inline handlers (the page's Content-Security-Policy forbids them). */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("fleet-data").textContent);
  const S = D.s, STATES = D.states, CODES = D.codes, SEV = D.severities, ROWS = D.rows;
  const N = ROWS.length;
  // Row and finding layouts (html.py _Packer.add).
  const NAME = 0, TYPE = 1, SUB = 2, RG = 3, LOC = 4, STATE = 5, VER = 6, WIN = 7, STATUS = 8,
    ID = 9, TAGS = 10, POL = 11, FIND = 12, ARM = 13;
  const F_CODE = 0, F_SEV = 1, F_POL = 2, F_RES = 3, F_PATH = 4, F_DES = 5, F_ACT = 6, F_MSG = 7;
  const F_AGE = 8, F_BY = 9; // how long it has been seen; who last modified its resource
  const NOT_COUNTING = new Set([SEV.indexOf("warning"), SEV.indexOf("info")]);
  const ACTION = new Set(["noncompliant", "conflicting", "error"].map((s) => STATES.indexOf(s)));
  const $ = (id) => document.getElementById(id);
  const str = (i) => (i < 0 ? null : S[i]);

  function clusterId(r) {
    const row = ROWS[r];
    if (row[ID] >= 0) return S[row[ID]];
    return "/subscriptions/" + S[row[SUB]] + "/resourceGroups/" + S[row[RG]] + "/providers/" +
      (D.providers[S[row[TYPE]]] || "") + "/" + S[row[NAME]];
  }
  function resourceId(r, f) {
    const x = f[F_RES];
    if (x === -1) return clusterId(r);
    if (x <= -2) return clusterId(r) + S[-(x + 2)];
    return S[x];
  }

  // Derived per-row facts, computed once: counting-finding code masks and counts.
  const useMask = CODES.length <= 31;
  const mask = new Int32Array(N), scored = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    let m = 0, n = 0;
    for (const f of ROWS[i][FIND]) {
      if (NOT_COUNTING.has(f[F_SEV])) continue;
      n++;
      if (useMask) m |= 1 << f[F_CODE];
    }
    mask[i] = m; scored[i] = n;
  }
  function hasCode(i, c) {
    if (useMask) return (mask[i] & (1 << c)) !== 0;
    return ROWS[i][FIND].some((f) => f[F_CODE] === c && !NOT_COUNTING.has(f[F_SEV]));
  }

  let hay = null; // lower-cased search text per row, built on the first search
  function haystack() {
    if (hay) return hay;
    hay = new Array(N);
    for (let i = 0; i < N; i++) {
      const row = ROWS[i], parts = [S[row[NAME]], S[row[RG]], S[row[SUB]], str(row[LOC]), S[row[TYPE]],
        str(row[STATUS]), str(row[VER]), STATES[row[STATE]], row[ID] >= 0 ? S[row[ID]] : ""];
      for (const t of row[TAGS]) parts.push(S[t]);
      for (const p of row[POL]) parts.push(S[p[0]]);
      for (const f of row[FIND]) parts.push(CODES[f[F_CODE]]);
      hay[i] = parts.join(" ").toLowerCase();
    }
    return hay;
  }

  // Sort keys: integer ranks, so sorting 50,000 rows compares numbers, not strings.
  const rankCache = {};
  function stringRank(col) {
    if (rankCache[col]) return rankCache[col];
    const seen = new Map();
    for (let i = 0; i < N; i++) seen.set(ROWS[i][col], 0);
    const order = Array.from(seen.keys()).sort((a, b) => {
      const x = a < 0 ? "" : S[a].toLowerCase(), y = b < 0 ? "" : S[b].toLowerCase();
      return x < y ? -1 : x > y ? 1 : 0;
    });
    order.forEach((k, j) => seen.set(k, j));
    const out = new Int32Array(N);
    for (let i = 0; i < N; i++) out[i] = seen.get(ROWS[i][col]);
    return (rankCache[col] = out);
  }
  function versionParts(v) {
    return v.split(/[.-]/).map((p) => (/^\d+$/.test(p) ? Number(p) : -1));
  }
  function versionRank() {
    if (rankCache.version) return rankCache.version;
    const seen = new Map();
    for (let i = 0; i < N; i++) seen.set(ROWS[i][VER], 0);
    const order = Array.from(seen.keys()).sort((a, b) => {
      if (a < 0 || b < 0) return (a < 0 ? 0 : 1) - (b < 0 ? 0 : 1);
      const x = versionParts(S[a]), y = versionParts(S[b]);
      for (let k = 0; k < Math.max(x.length, y.length); k++) {
        const d = (x[k] === undefined ? -2 : x[k]) - (y[k] === undefined ? -2 : y[k]);
        if (d) return d;
      }
      return 0;
    });
    order.forEach((k, j) => seen.set(k, j));
    const out = new Int32Array(N);
    for (let i = 0; i < N; i++) out[i] = seen.get(ROWS[i][VER]);
    return (rankCache.version = out);
  }
  function sortKey(key) {
    switch (key) {
      case "name": return stringRank(NAME);
      case "sub": return stringRank(SUB);
      case "rg": return stringRank(RG);
      case "loc": return stringRank(LOC);
      case "type": return stringRank(TYPE);
      case "version": return versionRank();
      case "findings": return scored;
      default: {
        if (!rankCache.state) {
          const out = new Int32Array(N);
          for (let i = 0; i < N; i++) out[i] = ROWS[i][STATE];
          rankCache.state = out;
        }
        return rankCache.state;
      }
    }
  }

  // ---- state: filters, sort, page -------------------------------------------------------
  const view = { q: "", state: "", code: "", sub: "", policy: "", sort: "state", dir: -1, page: 0, size: 100 };
  let matches = [];

  function applyFilters() {
    const terms = view.q.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const h = terms.length ? haystack() : null;
    const st = view.state === "" || view.state === "action" ? -1 : STATES.indexOf(view.state);
    const code = view.code === "" ? -1 : CODES.indexOf(view.code);
    const sub = view.sub === "" ? -1 : S.indexOf(view.sub);
    const pol = view.policy === "" ? -1 : S.indexOf(view.policy);
    const impossible = (view.code !== "" && code < 0) || (view.sub !== "" && sub < 0) ||
      (view.policy !== "" && pol < 0) || (view.state !== "" && view.state !== "action" && st < 0);
    const out = [];
    if (!impossible) {
      for (let i = 0; i < N; i++) {
        const row = ROWS[i];
        if (st >= 0 && row[STATE] !== st) continue;
        if (view.state === "action" && !ACTION.has(row[STATE])) continue;
        if (sub >= 0 && row[SUB] !== sub) continue;
        if (code >= 0 && !hasCode(i, code)) continue;
        if (pol >= 0 && !row[POL].some((p) => p[0] === pol)) continue;
        if (h) {
          const text = h[i];
          let ok = true;
          for (const t of terms) if (text.indexOf(t) < 0) { ok = false; break; }
          if (!ok) continue;
        }
        out.push(i);
      }
    }
    const key = sortKey(view.sort), names = stringRank(NAME), dir = view.dir;
    out.sort((a, b) => dir * (key[a] - key[b]) || names[a] - names[b] || a - b);
    matches = out;
  }

  function pages() { return Math.max(1, Math.ceil(matches.length / view.size)); }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "className") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function badge(stateIndex) {
    const s = STATES[stateIndex];
    return el("span", { className: "badge s-" + s }, el("span", { "aria-hidden": "true", text: D.symbols[stateIndex] }), " " + s);
  }
  function windowMark(w) {
    if (w === 1) return el("span", { className: "win-in", text: " ✓ in window" });
    if (w === 0) return el("span", { className: "win-out", text: " ✗ out of window" });
    return null;
  }

  function renderTable() {
    if (view.page >= pages()) view.page = pages() - 1;
    const start = view.page * view.size, end = Math.min(matches.length, start + view.size);
    const frag = document.createDocumentFragment();
    for (let k = start; k < end; k++) {
      const i = matches[k], row = ROWS[i];
      const codes = [];
      for (const f of row[FIND]) if (!NOT_COUNTING.has(f[F_SEV]) && codes.indexOf(CODES[f[F_CODE]]) < 0) codes.push(CODES[f[F_CODE]]);
      const version = str(row[VER]);
      frag.append(el("tr", null,
        el("th", { scope: "row" },
          el("button", { type: "button", className: "link", "data-row": String(i), text: S[row[NAME]] }),
          el("div", { className: "sub", text: row[ARM] ? "arm64" : "" })),
        el("td", null, badge(row[STATE])),
        el("td", null, el("strong", { text: String(scored[i]) }),
          codes.length ? el("div", { className: "codes", text: codes.slice(0, 2).join(", ") + (codes.length > 2 ? " +" + (codes.length - 2) : "") }) : null),
        el("td", null, version ? el("code", { text: version }) : el("span", { className: "muted", text: "not installed" }), windowMark(row[WIN])),
        el("td", { text: S[row[TYPE]] === "connectedClusters" ? "Arc" : S[row[TYPE]] === "managedClusters" ? "AKS" : S[row[TYPE]] }),
        el("td", { text: str(row[LOC]) || "" }),
        el("td", { text: S[row[RG]] }),
        el("td", null, el("code", { className: "small", text: S[row[SUB]] }))));
    }
    if (end === start) frag.append(el("tr", null, el("td", { colspan: "8", text: "No cluster matches these filters." })));
    $("rows").replaceChildren(frag);
    const total = N.toLocaleString();
    $("count").textContent = matches.length
      ? "Showing " + (start + 1).toLocaleString() + "–" + end.toLocaleString() + " of " + matches.length.toLocaleString() +
        " matching clusters (" + total + " in total)"
      : "No cluster matches (" + total + " in total)";
    $("p-where").textContent = "Page " + (view.page + 1).toLocaleString() + " of " + pages().toLocaleString();
    $("p-first").disabled = $("p-prev").disabled = view.page === 0;
    $("p-next").disabled = $("p-last").disabled = view.page >= pages() - 1;
    for (const th of document.querySelectorAll("#cluster-table thead th")) {
      if (th.dataset.key === view.sort) th.setAttribute("aria-sort", view.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  function update(resetPage) {
    if (resetPage) view.page = 0;
    applyFilters();
    renderTable();
    saveHash();
  }

  // ---- the drill-down -------------------------------------------------------------------
  let lastFocus = null;
  function pretty(i) {
    if (i < 0) return "";
    try { return JSON.stringify(JSON.parse(S[i]), null, 2); } catch (e) { return S[i]; }
  }
  function openCluster(i, opener) {
    const row = ROWS[i], id = clusterId(i);
    lastFocus = opener || document.activeElement;
    $("drill-title").replaceChildren(S[row[NAME]] + " ", badge(row[STATE]));
    const facts = el("dl", { className: "facts" });
    const fact = (k, v) => { if (v !== null && v !== undefined && v !== "") facts.append(el("dt", { text: k }), el("dd", null, v)); };
    fact("Id", el("code", { text: id }));
    fact("Type", S[row[TYPE]] + (row[ARM] ? " (arm64)" : ""));
    fact("Subscription", el("code", { text: S[row[SUB]] }));
    fact("Resource group", S[row[RG]]);
    fact("Location", str(row[LOC]));
    fact("Status", str(row[STATUS]));
    const version = str(row[VER]);
    const ext = el("span", null, version ? el("code", { text: version }) : "not installed");
    const w = windowMark(row[WIN]); if (w) ext.append(w);
    fact("Extension", ext);
    const tags = [];
    for (let t = 0; t < row[TAGS].length; t += 2) tags.push(S[row[TAGS][t]] + "=" + S[row[TAGS][t + 1]]);
    fact("Tags", tags.length ? tags.join(", ") : null);
    const body = [facts];
    if (row[POL].length) {
      const tbody = el("tbody");
      for (const p of row[POL]) {
        const why = [str(p[3]), p[4] >= 0 ? "until " + S[p[4]] : null].filter(Boolean).join(", ");
        tbody.append(el("tr", null, el("th", { scope: "row", text: S[p[0]] }), el("td", null, badge(p[1])),
          el("td", { text: str(p[2]) || "" }), el("td", { text: why })));
      }
      body.push(el("h3", { text: "Policies" }), el("table", { className: "data" },
        el("thead", null, el("tr", null, el("th", { scope: "col", text: "Policy" }), el("th", { scope: "col", text: "State" }),
          el("th", { scope: "col", text: "Mode" }), el("th", { scope: "col", text: "Exemption" }))), tbody));
    }
    body.push(el("h3", { text: row[FIND].length ? "Findings (" + row[FIND].length + ")" : "Findings" }));
    if (!row[FIND].length) body.push(el("p", { className: "muted", text: "None: the cluster is as its policies say." }));
    for (const f of row[FIND]) {
      const counts = !NOT_COUNTING.has(f[F_SEV]);
      const res = resourceId(i, f);
      const box = el("div", { className: "finding" + (counts ? "" : " not-counted") },
        el("div", { className: "finding-head" },
          el("code", { text: CODES[f[F_CODE]] }),
          el("span", { className: "sev sev-" + SEV[f[F_SEV]], text: SEV[f[F_SEV]] + (counts ? "" : " · not counted") }),
          el("span", { className: "muted", text: "policy: " + (str(f[F_POL]) || "none") })),
        el("div", { text: str(f[F_MSG]) || "" }),
        f[F_AGE] >= 0 ? el("div", { className: "muted age", text: S[f[F_AGE]].startsWith("new") ? S[f[F_AGE]] : (counts ? "drifted for " : "seen for ") + S[f[F_AGE]] }) : null,
        f[F_BY] >= 0 ? el("div", { className: "muted by", text: "last modified by " + S[f[F_BY]] }) : null,
        el("div", { className: "sub" }, "resource: ", el("code", { text: res })));
      if (f[F_PATH] >= 0 || f[F_DES] >= 0) {
        if (f[F_PATH] >= 0) box.append(el("div", null, "path: ", el("code", { className: "path", text: S[f[F_PATH]] })));
        box.append(el("div", { className: "diff" },
          el("div", { className: "desired" }, el("span", { className: "label", text: "+ desired (policy)" }), el("pre", { text: pretty(f[F_DES]) })),
          el("div", { className: "actual" }, el("span", { className: "label", text: "− actual (Azure)" }), el("pre", { text: pretty(f[F_ACT]) }))));
      }
      body.push(box);
    }
    $("drill-body").replaceChildren(...body);
    const dialog = $("drill");
    if (!dialog.open) dialog.showModal();
    $("drill-close").focus();
    view.cluster = id;
    saveHash();
  }
  $("drill-close").addEventListener("click", () => $("drill").close());
  $("drill").addEventListener("close", () => {
    delete view.cluster;
    saveHash();
    if (lastFocus && document.contains(lastFocus)) lastFocus.focus();
  });
  let byId = null;
  function findCluster(id) {
    if (!byId) { byId = new Map(); for (let i = 0; i < N; i++) byId.set(clusterId(i).toLowerCase(), i); }
    const i = byId.get(String(id).toLowerCase());
    return i === undefined ? -1 : i;
  }

  // ---- wiring -----------------------------------------------------------------------------
  function fillSelect(id, values) {
    const sel = $(id);
    for (const v of values) sel.append(el("option", { value: v, text: v }));
  }
  const presentCodes = new Set(), subs = new Set(), pols = new Set();
  for (let i = 0; i < N; i++) {
    const row = ROWS[i];
    subs.add(S[row[SUB]]);
    for (const p of row[POL]) pols.add(S[p[0]]);
    for (const f of row[FIND]) if (!NOT_COUNTING.has(f[F_SEV])) presentCodes.add(CODES[f[F_CODE]]);
  }
  fillSelect("f-code", CODES.filter((c) => presentCodes.has(c)));
  fillSelect("f-sub", Array.from(subs).sort());
  fillSelect("f-policy", Array.from(pols).sort());

  function syncControls() {
    $("f-q").value = view.q; $("f-state").value = view.state; $("f-code").value = view.code;
    $("f-sub").value = view.sub; $("f-policy").value = view.policy; $("p-size").value = String(view.size);
  }
  let timer = 0;
  $("f-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { view.q = $("f-q").value; update(true); }, 150);
  });
  for (const [id, key] of [["f-state", "state"], ["f-code", "code"], ["f-sub", "sub"], ["f-policy", "policy"]]) {
    $(id).addEventListener("change", () => { view[key] = $(id).value; update(true); });
  }
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("reset", (e) => {
    e.preventDefault();
    Object.assign(view, { q: "", state: "", code: "", sub: "", policy: "", sort: "state", dir: -1 });
    syncControls();
    update(true);
  });
  for (const b of document.querySelectorAll("#cluster-table thead button")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      if (view.sort === key) view.dir = -view.dir;
      else { view.sort = key; view.dir = key === "state" || key === "findings" ? -1 : 1; }
      update(false);
    });
  }
  $("p-first").addEventListener("click", () => { view.page = 0; renderTable(); saveHash(); });
  $("p-prev").addEventListener("click", () => { view.page = Math.max(0, view.page - 1); renderTable(); saveHash(); });
  $("p-next").addEventListener("click", () => { view.page = Math.min(pages() - 1, view.page + 1); renderTable(); saveHash(); });
  $("p-last").addEventListener("click", () => { view.page = pages() - 1; renderTable(); saveHash(); });
  $("p-size").addEventListener("change", () => { view.size = Number($("p-size").value) || 100; update(true); });
  $("rows").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-row]");
    if (b) openCluster(Number(b.dataset.row), b);
  });
  document.addEventListener("click", (e) => {
    const f = e.target.closest("[data-filter]");
    if (f) {
      Object.assign(view, { q: "", state: "", code: "", sub: "", policy: "" });
      view[f.dataset.filter] = f.dataset.value;
      syncControls();
      update(true);
      document.getElementById("clusters").scrollIntoView();
      return;
    }
    const c = e.target.closest("[data-cluster]");
    if (c) {
      const i = findCluster(c.dataset.cluster);
      if (i >= 0) openCluster(i, c);
    }
  });

  $("f-export").addEventListener("click", () => {
    const cell = (v) => {
      let t = v === null || v === undefined ? "" : String(v);
      if (/^[=+@\t\r]/.test(t) || /^-(?![\d.])/.test(t)) t = "'" + t; // no spreadsheet formulas
      return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
    };
    const lines = [["cluster_id", "name", "state", "subscription_id", "resource_group", "location", "type",
      "extension_version", "extension_in_window", "counting_findings", "codes"].join(",")];
    for (const i of matches) {
      const row = ROWS[i], codes = [];
      for (const f of row[FIND]) if (!NOT_COUNTING.has(f[F_SEV]) && codes.indexOf(CODES[f[F_CODE]]) < 0) codes.push(CODES[f[F_CODE]]);
      lines.push([clusterId(i), S[row[NAME]], STATES[row[STATE]], S[row[SUB]], S[row[RG]], str(row[LOC]), S[row[TYPE]],
        str(row[VER]), row[WIN] === 1 ? "true" : row[WIN] === 0 ? "false" : "", scored[i], codes.join(" ")].map(cell).join(","));
    }
    const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
    const a = el("a", { href: url, download: "fleet-" + (D.sweep.id || "report") + "-clusters.csv" });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });

  // The view lives in the URL fragment, so a filtered table (or an open cluster) is a link.
  function saveHash() {
    const p = new URLSearchParams();
    for (const k of ["q", "state", "code", "sub", "policy"]) if (view[k]) p.set(k, view[k]);
    if (view.sort !== "state" || view.dir !== -1) { p.set("sort", view.sort); p.set("dir", String(view.dir)); }
    if (view.page) p.set("page", String(view.page + 1));
    if (view.size !== 100) p.set("size", String(view.size));
    if (view.cluster) p.set("cluster", view.cluster);
    const hash = p.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }
  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    for (const k of ["q", "state", "code", "sub", "policy"]) view[k] = p.get(k) || "";
    if (p.get("sort")) { view.sort = p.get("sort"); view.dir = Number(p.get("dir")) < 0 ? -1 : 1; }
    if ([25, 100, 250, 1000].indexOf(Number(p.get("size"))) >= 0) view.size = Number(p.get("size"));
    view.page = Math.max(0, (Number(p.get("page")) || 1) - 1);
    return p.get("cluster");
  }
  const openId = loadHash();
  syncControls();
  applyFilters();
  renderTable();
  if (openId) { const i = findCluster(openId); if (i >= 0) openCluster(i, null); }
  document.documentElement.dataset.ready = "true";
})();
