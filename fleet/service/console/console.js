// The fleet console: a static page that signs in (MSAL for Entra ID, authorization code with
// PKCE; or the dev issuer of `fleet serve --dev`) and calls the API with the token. It builds
// the page with DOM calls and textContent only (no HTML from data), runs under a strict CSP
// (no inline code, no eval), and shows the approve and cancel buttons only when the API says
// this caller may use them (the API checks again on every call).
"use strict";

(function () {
  const TOKEN_KEY = "fleet.token";
  const main = document.getElementById("main");
  let config = { mode: "none" };
  let msalApp = null;
  let me = null;
  let timer = null;

  // --- signing in -------------------------------------------------------------------------

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function msalToken() {
    if (!msalApp) return null;
    const account = msalApp.getActiveAccount() || msalApp.getAllAccounts()[0];
    if (!account) return null;
    try {
      const found = await msalApp.acquireTokenSilent({ scopes: config.scopes, account });
      return found.accessToken;
    } catch (e) {
      await msalApp.acquireTokenRedirect({ scopes: config.scopes, account });
      return null;
    }
  }

  async function token() {
    return storedToken() || (await msalToken());
  }

  async function startMsal() {
    if (typeof msal === "undefined") throw new Error("MSAL did not load");
    msalApp = await msal.PublicClientApplication.createPublicClientApplication({
      auth: {
        clientId: config.clientId,
        authority: config.authority,
        redirectUri: window.location.origin + "/console/",
      },
      cache: { cacheLocation: "sessionStorage" },
    });
    const result = await msalApp.handleRedirectPromise();
    if (result && result.account) msalApp.setActiveAccount(result.account);
  }

  function signInPage() {
    clear(main);
    main.append(el("h1", {}, "Sign in"));
    if (config.mode === "entra") {
      main.append(
        el("button", { type: "button", onclick: () =>
          msalApp.loginRedirect({ scopes: config.scopes }) }, "Sign in with Microsoft Entra ID"));
    } else if (config.mode === "dev") {
      main.append(el("p", { class: "muted" },
        "fleet serve --dev: pick a demo user (tokens from the dev issuer on loopback)."));
      for (const u of config.users) {
        main.append(el("button", { type: "button", class: "secondary", "data-user": u.user,
          onclick: () => devSignIn(u.user) }, `${u.name} (${u.roles.join(", ")})`));
      }
    } else {
      main.append(el("p", { class: "error" }, config.message || "sign-in is not configured"));
    }
    ready();
  }

  async function devSignIn(user) {
    const r = await fetch("/dev/token", { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify({ user }) });
    const body = await r.json();
    sessionStorage.setItem(TOKEN_KEY, body.access_token);
    await start();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    if (msalApp && msalApp.getAllAccounts().length) {
      msalApp.logoutRedirect();
      return;
    }
    window.location.hash = "#/overview";
    window.location.reload();
  }

  // --- the API ------------------------------------------------------------------------------

  async function api(path, options = {}) {
    const bearer = await token();
    const headers = Object.assign({ accept: "application/json" }, options.headers || {});
    if (bearer) headers.authorization = "Bearer " + bearer;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const r = await fetch("/api/v1" + path, { method: options.method || "GET", headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body) });
    const body = (r.headers.get("content-type") || "").includes("json") ? await r.json() : {};
    if (!r.ok) {
      const message = (body.error && body.error.message) || r.statusText;
      const error = new Error(`${r.status}: ${message}`);
      error.status = r.status;
      throw error;
    }
    return body;
  }

  // --- building the page ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function ready() {
    document.documentElement.setAttribute("data-ready", "true");
  }

  function table(headers, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows));
  }

  function card(value, label, cls) {
    return el("div", { class: "card" }, el("div", { class: "value " + (cls || "") }, value),
      el("div", { class: "label" }, label));
  }

  function state(s) {
    return el("span", { class: "state-" + s }, s);
  }

  function status(s) {
    return el("span", { class: "status-" + s }, s);
  }

  function json(value) {
    return el("code", {}, value === undefined ? "" : JSON.stringify(value));
  }

  function link(href, text) {
    return el("a", { href }, text);
  }

  function params() {
    const [, query] = window.location.hash.split("?");
    return new URLSearchParams(query || "");
  }

  // --- views ------------------------------------------------------------------------------

  async function overview() {
    const sweeps = (await api("/sweeps?limit=20")).sweeps;
    const latest = sweeps.find((s) => s.summary);
    main.append(el("h1", {}, "Compliance overview"));
    if (!latest) {
      main.append(el("p", { class: "muted" }, "No finished sweep yet."));
      return;
    }
    const s = latest.summary;
    main.append(el("p", { class: "muted" }, `Sweep ${latest.sweep.id} finished `,
      latest.sweep.finishedAt || "", ` (policies ${latest.sweep.policyRevision})`));
    main.append(el("div", { class: "cards", id: "states" },
      card(`${s.compliancePercent ?? "-"}%`, "compliant", "state-compliant"),
      card(s.clusters, "clusters"),
      Object.entries(s.byState || {}).map(([k, v]) =>
        el("a", { href: `#/clusters?state=${k}` }, card(v, k, "state-" + k)))));
    main.append(el("h2", {}, "Findings"));
    main.append(table(["code", "count"], Object.entries(s.byFinding || {}).map(([k, v]) =>
      el("tr", {}, el("td", {}, el("code", {}, k)), el("td", {}, v)))));
    main.append(el("h2", {}, "Extension versions (N-2 window)"));
    main.append(table(["window", "clusters"], Object.entries(s.versionWindow || {}).map(
      ([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
    main.append(table(["version", "clusters"], Object.entries(s.extensionVersions || {}).map(
      ([k, v]) => el("tr", {}, el("td", {}, el("code", {}, k)), el("td", {}, v)))));
    const commits = Object.entries(s.fluxCommits || {});
    if (commits.length) {
      // Commit convergence: per flux configuration, the commit most clusters run and how many
      // clusters run something else (the HTML and Markdown reports name them).
      main.append(el("h2", {}, "Commit convergence"));
      main.append(table(["configuration", "clusters", "majority commit", "on majority", "commits"],
        commits.map(([name, c]) => {
          const top = (c.commits || []).find((x) => x.commit === c.majority);
          const on = top && c.clusters ? `${(100 * top.clusters / c.clusters).toFixed(1)}%` : "-";
          return el("tr", {}, el("td", {}, el("code", {}, name)), el("td", {}, c.clusters),
            el("td", { title: c.majority || "" }, el("code", {}, shortCommit(c.majority))),
            el("td", {}, on), el("td", {}, (c.commits || []).length));
        })));
    }
  }

  function shortCommit(commit) {
    if (!commit) return "not synced";
    const m = /^(.*?@?sha(?:1|256):)([0-9a-fA-F]+)$/.exec(commit);
    return m ? m[1] + m[2].slice(0, 12) : commit;
  }

  async function clusters() {
    const p = params();
    const sweep = p.get("sweep") || "latest";
    const query = new URLSearchParams({ limit: "200" });
    if (p.get("state")) query.set("state", p.get("state"));
    if (p.get("search")) query.set("search", p.get("search"));
    const page = await api(`/sweeps/${encodeURIComponent(sweep)}/clusters?${query}`);
    main.append(el("h1", {}, `Clusters of sweep ${page.sweep}`));
    const search = el("input", { type: "search", placeholder: "name, id or group",
      value: p.get("search") || "", "aria-label": "search" });
    main.append(el("div", { class: "toolbar" }, search, el("button", { type: "button",
      class: "secondary", onclick: () => {
        p.set("search", search.value);
        window.location.hash = `#/clusters?${p}`;
      } }, "Search"), el("span", { class: "muted" }, `${page.total} cluster(s)`)));
    main.append(table(["cluster", "state", "type", "location", "extension", "findings"],
      page.clusters.map((c) => el("tr", {},
        el("th", { scope: "row" }, link(`#/cluster?sweep=${encodeURIComponent(page.sweep)}` +
          `&id=${encodeURIComponent(c.id)}`, c.name)),
        el("td", {}, state(c.state)), el("td", {}, c.type), el("td", {}, c.location),
        el("td", {}, c.extensionVersion || ""), el("td", {}, c.findings)))));
  }

  async function cluster() {
    const p = params();
    const found = await api(`/sweeps/${encodeURIComponent(p.get("sweep") || "latest")}` +
      `/cluster?id=${encodeURIComponent(p.get("id"))}`);
    const c = found.cluster;
    main.append(el("h1", {}, c.name, " ", state(c.state)));
    main.append(el("p", { class: "mono muted" }, c.id));
    main.append(el("h2", {}, "Policies"));
    main.append(table(["policy", "state", "mode"], (c.policies || []).map((x) =>
      el("tr", {}, el("td", {}, x.name), el("td", {}, state(x.state)), el("td", {}, x.mode)))));
    main.append(el("h2", {}, "Findings and field diffs"));
    main.append(table(["code", "resource", "path", "desired", "actual", "message"],
      (c.findings || []).map((f) => el("tr", { class: "finding" },
        el("td", {}, el("code", {}, f.code)), el("td", { class: "mono" },
          (f.resource || "").split("/providers/").pop()),
        el("td", { class: "mono path" }, f.path || ""), el("td", {}, json(f.desired)),
        el("td", {}, json(f.actual)), el("td", {}, f.message)))));
    main.append(el("h2", {}, "History"));
    main.append(table(["sweep", "started", "state", "codes"], found.history.map((h) =>
      el("tr", {}, el("td", { class: "mono" }, h.sweepId), el("td", {}, h.startedAt),
        el("td", {}, state(h.state)), el("td", {}, h.codes.join(", "))))));
  }

  async function sweeps() {
    const list = (await api("/sweeps?limit=50")).sweeps;
    main.append(el("h1", {}, "Sweeps"));
    if (me.permissions.operate) {
      main.append(el("div", { class: "toolbar" }, el("button", { type: "button", id: "sweep",
        onclick: async () => { await api("/sweeps", { method: "POST", body: {} }); route(); } },
        "Start a sweep")));
    }
    main.append(table(["sweep", "started", "compliant", "clusters", ""], list.map((s) =>
      el("tr", {}, el("td", { class: "mono" },
        link(`#/clusters?sweep=${encodeURIComponent(s.sweep.id)}`, s.sweep.id)),
        el("td", {}, s.sweep.startedAt), el("td", {},
          s.summary ? `${s.summary.compliancePercent}%` : "running"),
        el("td", {}, s.summary ? s.summary.clusters : ""),
        el("td", {}, s.summary ? link(`#/diff?sweep=${encodeURIComponent(s.sweep.id)}`,
          "what changed") : "")))));
  }

  async function diff() {
    const p = params();
    const changes = await api(`/sweeps/${encodeURIComponent(p.get("sweep"))}/diff`);
    main.append(el("h1", {}, "What changed"));
    main.append(el("p", { class: "muted" }, `${(changes.from || {}).id || "?"} → `,
      `${(changes.to || {}).id || "?"}`));
    for (const [key, title] of [["newDrift", "New findings"], ["fixed", "Fixed"],
      ["stateChanges", "State changes"], ["newClusters", "New clusters"],
      ["goneClusters", "Gone clusters"]]) {
      const items = changes[key] || [];
      main.append(el("h2", {}, `${title} (${(changes.counts || {})[key] ?? items.length})`));
      main.append(table(["cluster", "what"], items.slice(0, 200).map((x) => el("tr", {},
        el("td", {}, x.name || x.id || ""),
        el("td", {}, x.code ? `${x.code} ${x.path || ""}` :
          x.from ? `${x.from} → ${x.to}` : x.state || "")))));
    }
  }

  async function jobs() {
    const list = (await api("/jobs?limit=50")).jobs;
    main.append(el("h1", {}, "Jobs"));
    if (me.permissions.operate) {
      main.append(el("div", { class: "toolbar" }, el("button", { type: "button", id: "start",
        onclick: async () => {
          const started = await api("/jobs", { method: "POST", body: {} });
          window.location.hash = `#/job?id=${encodeURIComponent(started.id)}`;
        } }, "Start a remediation")));
    }
    main.append(table(["job", "kind", "status", "created", "by", "fixed", "failed"],
      list.map((j) => el("tr", {}, el("th", { scope: "row", class: "mono" },
        link(`#/job?id=${encodeURIComponent(j.id)}`, j.id)), el("td", {}, j.kind),
        el("td", {}, status(j.status)), el("td", {}, j.createdAt),
        el("td", {}, ((j.options || {}).createdBy || {}).name || j.principal || ""),
        el("td", {}, (j.counters || {}).fixed ?? ""),
        el("td", {}, (j.counters || {}).failed ?? "")))));
  }

  async function job() {
    const id = params().get("id");
    const view = await api(`/jobs/${encodeURIComponent(id)}`);
    const j = view.job;
    main.append(el("h1", {}, "Job ", el("span", { class: "mono" }, j.id), " ",
      status(j.status)));
    if (j.error) main.append(el("p", { class: "error" }, j.error));
    if (view.createdBy) main.append(el("p", { class: "muted" }, `started by ${view.createdBy.name}`));
    const actions = el("div", { class: "toolbar", id: "actions" });
    if (view.can && view.can.approve) {
      actions.append(el("button", { type: "button", id: "approve", onclick: async () => {
        await api(`/jobs/${encodeURIComponent(j.id)}/approve`, { method: "POST", body: {} });
        route();
      } }, `Approve wave ${view.waitingFor}`));
    }
    if (view.can && view.can.cancel) {
      actions.append(el("button", { type: "button", id: "cancel", class: "secondary",
        onclick: async () => {
          await api(`/jobs/${encodeURIComponent(j.id)}/cancel`, { method: "POST" });
          route();
        } }, "Cancel"));
    }
    main.append(actions);
    main.append(el("h2", {}, "Waves"));
    main.append(table(["wave", "clusters", "progress", "approval"], (view.waves || []).map(
      (w) => el("tr", { class: "wave", "data-wave": w.name }, el("td", {}, w.name),
        el("td", {}, w.clusters),
        el("td", {}, Object.entries(w.statuses).map(([k, v]) => `${k} ${v}`).join(", ")),
        el("td", { class: "approval" }, w.approval ? `${w.approvals.length} of ${w.approvers}` +
          (w.approvals.length ? ` (${w.approvals.map((a) => a.name).join(", ")})` : "") : "")))));
    main.append(el("h2", {}, "Clusters"));
    main.append(table(["cluster", "wave", "status", "reason"], (view.clusters || []).map((c) =>
      el("tr", {}, el("td", {}, c.name), el("td", {}, c.wave || ""),
        el("td", {}, status(c.status)), el("td", {}, c.reason || "")))));
    const ended = ["succeeded", "completed", "failed", "stopped", "cancelled"];
    if (!ended.includes(j.status)) timer = setTimeout(route, 2000);  // live progress
  }

  const VIEWS = { overview, clusters, cluster, sweeps, diff, jobs, job };

  async function route() {
    clearTimeout(timer);
    document.documentElement.setAttribute("data-ready", "false");
    const name = (window.location.hash.replace(/^#\//, "").split("?")[0]) || "overview";
    const view = VIEWS[name] || overview;
    const target = main;
    clear(target);
    try {
      await view();
    } catch (e) {
      if (e.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        signInPage();
        return;
      }
      target.append(el("p", { class: "error" }, e.message));
    }
    ready();
  }

  async function header() {
    document.getElementById("nav").hidden = false;
    document.getElementById("who").textContent = `${me.name} · ${me.roles.join(", ") || "no role"}`;
    const out = document.getElementById("signout");
    out.hidden = false;
    out.addEventListener("click", signOut);
    try {
      const ks = await api("/kill-switch");
      const badge = document.getElementById("killswitch");
      badge.hidden = !ks.engaged;
      badge.textContent = ks.engaged ? "kill switch ON" : "";
    } catch (e) {
      // a caller without a role sees no kill switch; the pages say why
    }
  }

  async function start() {
    if (!(await token())) {
      signInPage();
      return;
    }
    try {
      me = await api("/me");
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      signInPage();
      return;
    }
    await header();
    await route();
  }

  async function boot() {
    config = await (await fetch("config.json")).json();
    if (config.mode === "entra" && !storedToken()) await startMsal();
    window.addEventListener("hashchange", route);
    await start();
  }

  boot().catch((e) => {
    main.append(el("p", { class: "error" }, String(e)));
    ready();
  });
})();
