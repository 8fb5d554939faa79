/// The console's script: a hash-routed page per view, built with DOM calls only (no
/// innerHTML), so names and URLs from the API are always text, never markup.
enum ConsoleScript {
    static let source = #"""
    "use strict";

    const state = { me: null, timer: null };

    function el(tag, attrs, ...children) {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : String(v));
      }
      for (const c of children.flat(Infinity)) {
        if (c === undefined || c === null || c === false) continue;
        e.append(c instanceof Node ? c : String(c));
      }
      return e;
    }

    function badge(text) { return el("span", { class: "badge " + text }, text); }

    function bytes(n) {
      if (!n) return "0 B";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
    }

    function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

    function showError(message) {
      const box = document.getElementById("error");
      box.textContent = message || "";
      box.hidden = !message;
    }

    async function api(method, path, body) {
      const init = { method, credentials: "same-origin", headers: {} };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      const res = await fetch("/api/v1" + path, init);
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
      if (res.status === 401 && path !== "/users/signin") {
        state.me = null;
        location.hash = "#/signin";
        throw new Error("Your session has ended; please sign in again.");
      }
      if (!res.ok) throw new Error((data && data.message) || res.status + " " + res.statusText);
      return data;
    }

    function render(...nodes) {
      const view = document.getElementById("view");
      view.replaceChildren(...nodes.flat());
    }

    function table(headers, rows, empty) {
      if (!rows.length) return el("p", { class: "muted" }, empty || "None.");
      return el("table", {},
        el("thead", {}, el("tr", {}, headers.map(h => el("th", {}, h)))),
        el("tbody", {}, rows));
    }

    // MARK: sign-in

    function signInView() {
      const name = el("input", { type: "text", name: "name", autocomplete: "username", required: true });
      const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
      const form = el("form", { id: "signin-form" },
        el("label", {}, "Name", name),
        el("label", {}, "Password", password),
        el("button", { type: "submit" }, "Sign in"));
      form.addEventListener("submit", async ev => {
        ev.preventDefault();
        try {
          await api("POST", "/users/signin", { name: name.value, password: password.value });
          state.me = await api("GET", "/users/me");
          location.hash = "#/clusters";
        } catch (err) { showError(err.message); }
      });
      render(el("section", { class: "card signin" }, el("h1", {}, "Sign in to Dragonfly"), form));
    }

    // MARK: clusters

    async function clustersView() {
      const [clusters, schedulers, seedClusters, seedPeers] = await Promise.all([
        api("GET", "/scheduler-clusters?per_page=1000"),
        api("GET", "/schedulers?per_page=1000"),
        api("GET", "/seed-peer-clusters?per_page=1000"),
        api("GET", "/seed-peers?per_page=1000"),
      ]);
      const cards = clusters.map(c => {
        const mine = schedulers.filter(s => s.scheduler_cluster_id === c.id);
        const seedClusterIDs = seedClusters.filter(sc => sc.scheduler_cluster_id === c.id).map(sc => sc.id);
        const seeds = seedPeers.filter(p => seedClusterIDs.includes(p.seed_peer_cluster_id));
        return el("section", { class: "card cluster", "data-cluster": c.id },
          el("h2", {}, el("a", { href: "#/clusters/" + c.id, class: "cluster-name" }, c.name),
            c.is_default ? el("span", { class: "muted" }, "  (default)") : null),
          c.bio ? el("p", { class: "muted" }, c.bio) : null,
          el("h3", {}, "Schedulers"),
          table(["Hostname", "Address", "IDC", "Location", "State", "Updated"], mine.map(s =>
            el("tr", {}, el("td", {}, s.hostname), el("td", { class: "mono" }, s.ip + ":" + s.port),
              el("td", {}, s.idc || ""), el("td", {}, s.location || ""), el("td", {}, badge(s.state)), el("td", {}, when(s.updated_at)))),
            "No scheduler has registered."),
          el("h3", {}, "Seed peers"),
          table(["Hostname", "Address", "Type", "State", "Updated"], seeds.map(p =>
            el("tr", {}, el("td", {}, p.hostname), el("td", { class: "mono" }, p.ip + ":" + p.port),
              el("td", {}, p.type), el("td", {}, badge(p.state)), el("td", {}, when(p.updated_at)))),
            "No seed peer serves this cluster."));
      });
      render(el("h1", {}, "Scheduler clusters"), cards.length ? cards : el("p", { class: "muted" }, "No clusters yet."));
    }

    function progress(done, total, unit) {
      const pct = total ? Math.min(100, Math.round(done / total * 100)) : 0;
      return el("span", {}, el("span", { class: "progress", title: pct + "%" }, el("span", { style: "width:" + pct + "%" })),
        " " + done + "/" + (total || "?") + " " + (unit || "pieces"));
    }

    function duration(seconds) {
      if (seconds % 86400 === 0 && seconds > 0) return seconds / 86400 + " d";
      if (seconds % 3600 === 0 && seconds > 0) return seconds / 3600 + " h";
      if (seconds % 60 === 0 && seconds > 0) return seconds / 60 + " min";
      return seconds + " s";
    }

    // A job's downloads: counted while it runs, then done (and failed) of all.
    function jobProgress(j) {
      const r = j.result || {};
      const failed = r.progress ? r.progress.failed : r.failed;
      let shown = "";
      if (r.progress) shown = progress(r.progress.done, r.progress.total, "downloads");
      else if (typeof r.total === "number") shown = progress(r.total - (r.failed || 0), r.total, "downloads");
      return el("span", { class: "job-progress" }, shown, failed ? el("span", { class: "muted" }, " (" + failed + " failed)") : null);
    }

    async function clusterView(id) {
      const [cluster, hosts, tasks, cached] = await Promise.all([
        api("GET", "/scheduler-clusters/" + id),
        api("GET", "/scheduler-clusters/" + id + "/hosts"),
        api("GET", "/scheduler-clusters/" + id + "/tasks?limit=50"),
        api("GET", "/scheduler-clusters/" + id + "/persistent-cache-tasks"),
      ]);
      const hostTable = table(["Hostname", "Address", "Type", "OS", "Disk used", "Scheduler"], hosts.map(h =>
        el("tr", { class: "host" }, el("td", {}, h.hostname), el("td", { class: "mono" }, h.ip + ":" + h.port),
          el("td", {}, h.type), el("td", {}, [h.os, h.platform].filter(Boolean).join(" ")),
          el("td", {}, h.disk_used_percent === undefined || h.disk_used_percent === null ? "" : h.disk_used_percent.toFixed(1) + " %"),
          el("td", {}, h.scheduler))), "No hosts are announced to this cluster's schedulers.");
      const taskRows = tasks.map(t => el("tr", { class: "task" },
        el("td", { class: "mono" }, t.id.slice(0, 16) + "…"),
        el("td", { class: "mono" }, t.url),
        el("td", {}, badge(t.state)),
        el("td", {}, bytes(t.content_length)),
        el("td", {}, table(["Peer host", "State", "Progress", "Source"], t.peers.map(p =>
          el("tr", { class: "peer" }, el("td", {}, p.hostname || p.host_id), el("td", {}, badge(p.state)),
            el("td", {}, progress(p.finished_pieces, t.piece_count)),
            el("td", {}, p.back_to_source ? "origin" : "peers"))), "No peers."))));
      const cachedRows = cached.map(t => el("tr", { class: "persistent-cache-task" },
        el("td", { class: "mono" }, t.id.slice(0, 16) + "…"),
        el("td", {}, badge(t.state)),
        el("td", {}, bytes(t.content_length)),
        el("td", { class: "replica-count" }, t.current_persistent_replica_count + " / " + t.persistent_replica_count),
        el("td", {}, duration(t.ttl_seconds)),
        el("td", {}, table(["Host", "State", "Kind"], t.replicas.map(r =>
          el("tr", { class: "replica" }, el("td", {}, r.hostname || r.host_id), el("td", {}, badge(r.state)),
            el("td", {}, r.persistent ? "replica" : "cached copy"))), "No copies."))));
      render(el("h1", {}, "Cluster ", el("span", { class: "cluster-name" }, cluster.name)),
        el("section", { class: "card" }, el("h2", {}, "Hosts (" + hosts.length + ")"), hostTable),
        el("section", { class: "card" }, el("h2", {}, "Tasks (" + tasks.length + ")"),
          table(["Task", "URL", "State", "Size", "Peers"], taskRows, "No tasks yet.")),
        el("section", { class: "card" }, el("h2", {}, "Persistent cache tasks (" + cached.length + ")"),
          table(["Task", "State", "Size", "Replicas", "TTL", "Copies"], cachedRows, "No persistent cache tasks (dfcache import).")),
        el("p", { class: "muted" }, "Refreshes every 5 seconds."));
      state.timer = setTimeout(() => route(), 5000);
    }

    // MARK: preheat jobs

    function jobURL(job) {
      const a = job.args || {};
      return a.url || (Array.isArray(a.urls) ? a.urls.join(", ") : "");
    }

    async function jobsView() {
      const [jobs, clusters] = await Promise.all([
        api("GET", "/jobs?per_page=50"),
        api("GET", "/scheduler-clusters?per_page=1000"),
      ]);
      const canWrite = state.me && state.me.role === "root";
      const url = el("input", { type: "text", name: "url", placeholder: "https://registry.example.com/v2/library/alpine/manifests/3.19", required: true });
      const kind = el("select", { name: "type" }, el("option", { value: "image" }, "image"), el("option", { value: "file" }, "file"));
      const scope = el("select", { name: "scope" },
        ["single_seed_peer", "all_seed_peers", "all_peers"].map(s => el("option", { value: s }, s)));
      const platform = el("input", { type: "text", name: "platform", placeholder: "linux/amd64" });
      const boxes = clusters.map(c => el("label", {}, el("input", { type: "checkbox", name: "cluster", value: c.id }), " " + c.name + "  "));
      const form = el("form", { class: "inline", id: "preheat-form" },
        el("label", {}, "Kind"), kind,
        el("label", {}, "URL"), url,
        el("label", {}, "Scope"), scope,
        el("label", {}, "Platform"), platform,
        el("label", {}, "Clusters"), el("div", {}, boxes.length ? boxes : el("span", { class: "muted" }, "all")),
        el("div", { class: "actions" }, el("button", { type: "submit", disabled: !canWrite }, "Start preheat"),
          canWrite ? null : el("span", { class: "muted" }, "  Only root may start jobs.")));
      form.addEventListener("submit", async ev => {
        ev.preventDefault();
        const args = { type: kind.value, url: url.value.trim(), scope: scope.value };
        if (platform.value.trim()) args.platform = platform.value.trim();
        const ids = boxes.map(b => b.querySelector("input")).filter(i => i.checked).map(i => Number(i.value));
        try {
          await api("POST", "/jobs", { type: "preheat", args, scheduler_cluster_ids: ids });
          showError("");
          route();
        } catch (err) { showError(err.message); }
      });
      const rows = jobs.map(j => el("tr", { class: "job" },
        el("td", {}, j.id), el("td", {}, j.type), el("td", { class: "mono job-url" }, jobURL(j)),
        el("td", {}, (j.args && j.args.scope) || ""), el("td", {}, badge(j.state)), el("td", {}, jobProgress(j)),
        el("td", {}, (j.scheduler_cluster_ids || []).join(", ") || "all"), el("td", {}, when(j.created_at))));
      render(el("h1", {}, "Preheat jobs"),
        el("section", { class: "card" }, el("h2", {}, "Start a preheat"), form),
        el("section", { class: "card" }, el("h2", {}, "Jobs"),
          table(["ID", "Type", "URL", "Scope", "State", "Progress", "Clusters", "Created"], rows, "No jobs yet.")));
      if (jobs.some(j => j.state === "PENDING" || j.state === "RUNNING")) state.timer = setTimeout(() => route(), 3000);
    }

    // MARK: personal access tokens

    async function tokensView(fresh) {
      const tokens = await api("GET", "/personal-access-tokens?per_page=100");
      const name = el("input", { type: "text", name: "name", required: true });
      const days = el("input", { type: "number", name: "days", min: 1, max: 3650, value: 30 });
      const scopes = ["job", "preheat", "cluster"].map(s => el("label", {}, el("input", { type: "checkbox", value: s, checked: s !== "cluster" }), " " + s + "  "));
      const form = el("form", { class: "inline", id: "token-form" },
        el("label", {}, "Name"), name,
        el("label", {}, "Scopes"), el("div", {}, scopes),
        el("label", {}, "Expires in (days)"), days,
        el("div", { class: "actions" }, el("button", { type: "submit" }, "Create token")));
      form.addEventListener("submit", async ev => {
        ev.preventDefault();
        const chosen = scopes.map(l => l.querySelector("input")).filter(i => i.checked).map(i => i.value);
        const expires = new Date(Date.now() + Number(days.value || 30) * 86400000).toISOString().replace(/\.\d+Z$/, "Z");
        try {
          const made = await api("POST", "/personal-access-tokens", { name: name.value, scopes: chosen, expired_at: expires });
          showError("");
          tokensView(made);
        } catch (err) { showError(err.message); }
      });
      const rows = tokens.map(t => el("tr", { class: "token" },
        el("td", {}, t.name), el("td", {}, t.scopes.join(", ")), el("td", {}, badge(t.state)),
        el("td", {}, when(t.expired_at)),
        el("td", {}, el("button", { class: "danger", type: "button", onclick: async () => {
          if (!confirm("Revoke the token " + t.name + "?")) return;
          try { await api("DELETE", "/personal-access-tokens/" + t.id); tokensView(); } catch (err) { showError(err.message); }
        } }, "Revoke"))));
      render(el("h1", {}, "Personal access tokens"),
        fresh && fresh.token ? el("div", { class: "secret" }, "Copy the new token now; it is not shown again: ",
          el("span", { class: "mono", id: "new-token" }, fresh.token)) : null,
        el("section", { class: "card" }, el("h2", {}, "New token"), form),
        el("section", { class: "card" }, el("h2", {}, "Tokens"),
          table(["Name", "Scopes", "State", "Expires", ""], rows, "No tokens.")));
    }

    // MARK: routing

    async function route() {
      clearTimeout(state.timer);
      const hash = location.hash || "#/clusters";
      if (!state.me && hash !== "#/signin") {
        try { state.me = await api("GET", "/users/me"); } catch (_) { return; }
      }
      document.getElementById("nav").hidden = !state.me || hash === "#/signin";
      document.getElementById("whoami").textContent = state.me ? state.me.name + " (" + state.me.role + ")" : "";
      for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", hash.startsWith(a.getAttribute("href")));
      try {
        let m;
        if (hash === "#/signin") signInView();
        else if ((m = hash.match(/^#\/clusters\/(\d+)$/))) await clusterView(m[1]);
        else if (hash === "#/jobs") await jobsView();
        else if (hash === "#/tokens") await tokensView();
        else await clustersView();
      } catch (err) { showError(err.message); }
    }

    document.addEventListener("DOMContentLoaded", () => {
      document.getElementById("signout").addEventListener("click", async () => {
        try { await api("POST", "/users/signout"); } catch (_) {}
        state.me = null;
        location.hash = "#/signin";
      });
      window.addEventListener("hashchange", () => { showError(""); route(); });
      route();
    });
    """#
}
