// The admin console's page: a thin view over the server's review model. No framework, no build step.
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) =>
    ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
  const timings = window.__adminTimings = {start: performance.now()};
  let rows = [], shown = [], summary = {}, current = -1;
  const selected = new Set();

  async function api(path, body) {
    const init = body === undefined ? {credentials: "same-origin"} : {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)};
    const reply = await fetch(path, init);
    const value = await reply.json();
    if (!reply.ok) {
      const text = value.error + (value.problems ? ": " + value.problems.join("; ") : "");
      toast(text);
      throw new Error(text);
    }
    return value;
  }
  function toast(text) { $("toast").textContent = text; setTimeout(() => { $("toast").textContent = ""; }, 8000); }

  function setState(state) {
    rows = state.rows; summary = state.summary;
    const c = summary.counts;
    $("summary").textContent = `revision ${summary.revision} · expires ${summary.expires_at} · ${summary.signature}` +
      ` · ${c.pending} pending, ${c.changed} changed, ${c.approved} approved, ${c.disabled} disabled` +
      ` · inventory: ${summary.inventory.tools} tools from ${summary.inventory.users} users` +
      (summary.dirty ? " · unpublished changes" : "");
    $("toolset-names").innerHTML = Object.keys(summary.toolsets).map((n) => `<option value="${esc(n)}">`).join("");
    $("profiles").innerHTML = summary.profiles.map((p) => `<li><strong>${esc(p.name)}</strong>: ` +
      `${esc((p.members || []).join(", "))} → ${esc((p.toolsets || []).join(", "))}</li>`).join("") ||
      "<li class=muted>none: approved tools are for everyone</li>";
    $("destinations").textContent = "Publishes to: " + (summary.destinations.join(", ") || "nowhere (start admin with --out or --publish-url)") +
      (summary.signing ? " · signed on the server" : " · unsigned (no --key)");
    if (!$("expires").value) $("expires").value = summary.defaultDays;
    applyFilter();
  }

  function matches(r, words) {
    const hay = (r.key + " " + r.state + " " + r.class + " " + r.who.join(" ") + " " + r.title + " " + r.toolsets.join(" ")).toLowerCase();
    return words.every((w) => hay.includes(w));
  }
  function applyFilter() {
    const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    const state = $("state-filter").value;
    shown = rows.filter((r) => (!state || r.state === state) && (!words.length || matches(r, words)));
    $("shown").textContent = `${shown.length} of ${rows.length} shown`;
    current = Math.min(Math.max(current, 0), shown.length - 1);
    render();
  }

  function rowHtml(r, i) {
    const who = r.users ? r.who.map((u) => esc(u).replace("@", "@<wbr>")).join(", ") + (r.users > r.who.length ? ` +${r.users - r.who.length}` : "") : '<span class="muted">—</span>';
    return `<tr data-i="${i}" tabindex="-1"${i === current ? ' class="current"' : ""}>` +
      `<td><input type="checkbox" aria-label="Select ${esc(r.key)}"${selected.has(r.key) ? " checked" : ""}></td>` +
      `<td class="key${r.changedHere ? " edited" : ""}">${esc(r.key)}${r.title ? `<br><span class="muted">${esc(r.title)}</span>` : ""}</td>` +
      `<td class="state s-${r.state}">${r.state}${r.constrained ? " (constrained)" : ""}</td>` +
      `<td>${esc(r.class)}</td><td>${who}</td>${when(r.first)}${when(r.last)}` +
      `<td class="sets">${r.toolsets.map((t) => `<span title="${esc(t)}">${esc(t)}</span>`).join("")}</td></tr>`;
  }
  // 2026-11-20T10:00:00Z as "2026-11-20" over "10:00", the whole time in the tooltip and for screen readers.
  function when(t) {
    return t ? `<td class="when"><time datetime="${esc(t)}" title="${esc(t)}"><span>${esc(t.slice(0, 10))}</span>` +
      `<span>${esc(t.slice(11, 16))}</span></time></td>` : "<td></td>";
  }
  // Incremental: the first screenful of rows at once, more as the list is scrolled (or moved through with j/k),
  // so thousands of tools never cost a layout of thousands of rows up front.
  const PAGE = 200;
  let limit = PAGE;
  function moreRow() {
    const left = shown.length - limit;
    return left > 0 ? `<tr id="more-row"><td colspan="8"><button type="button" id="more">Show ${Math.min(left, 500)} more` +
      ` (${left} not shown yet)</button></td></tr>` : "";
  }
  function render(keepLimit) {
    if (!keepLimit) limit = Math.max(PAGE, current + 1);
    $("rows").innerHTML = shown.slice(0, limit).map(rowHtml).join("") + moreRow();
    observeMore();
    if (!timings.pending) { timings.pending = performance.now(); document.body.dataset.pendingRendered = "1"; }
    timings.all = performance.now();
    document.body.dataset.rendered = "1";
    $("selected-count").textContent = selected.size ? `${selected.size} selected` : "";
  }
  function showMore() {
    if (limit >= shown.length) return;
    const from = limit;
    limit = Math.min(shown.length, limit + 500);
    const more = $("more-row");
    if (more) more.remove();
    $("rows").insertAdjacentHTML("beforeend", shown.slice(from, limit).map((r, j) => rowHtml(r, from + j)).join("") + moreRow());
    observeMore();
  }
  const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) showMore();
  }, {rootMargin: "400px"}) : null;
  function observeMore() {
    const more = $("more-row");
    if (more && observer) { observer.disconnect(); observer.observe(more); }
  }

  function focusRow(i, scroll = true) {
    if (!shown.length) return;
    current = Math.max(0, Math.min(i, shown.length - 1));
    while (current >= limit) showMore();
    document.querySelectorAll("#rows tr.current").forEach((tr) => tr.classList.remove("current"));
    const tr = document.querySelector(`#rows tr[data-i="${current}"]`);
    if (tr) { tr.classList.add("current"); if (scroll) tr.focus(); }
  }
  function targets() {
    if (selected.size) return [...selected];
    return current >= 0 && shown[current] ? [shown[current].key] : [];
  }
  async function op(body) {
    const keys = body.keys || targets();
    if (!keys.length && !["profile", "reset"].includes(body.op)) { toast("Select tools first (x, or the checkboxes)."); return; }
    const state = await api("/api/ops", {...body, keys});
    selected.clear();
    setState(state);
    if (keys.length === 1) showDetail(keys[0]);
  }

  async function showDetail(key) {
    const d = await api("/api/tool?key=" + encodeURIComponent(key));
    const e = d.entry || {};
    let html = `<h2 id="detail-heading">${esc(key)}</h2><p>State <strong class="s-${d.state}">${d.state}</strong>` +
      (e.class ? `, class ${esc(e.class)}` : "") + (e.sha256 ? `, pinned <code>${esc(e.sha256.slice(0, 12))}</code>` : ", not pinned") +
      (d.toolsets.length ? `; toolsets ${esc(d.toolsets.join(", "))}` : "") + `</p>`;
    html += `<div class="controls"><button type="button" data-act="approve">Approve this definition</button>` +
      `<button type="button" data-act="disable">Disable</button></div>`;
    if (d.diff.length) {
      html += `<h3>What changed since approval</h3>`;
      for (const f of d.diff) {
        if (f.unknown) { html += `<p class="muted">${esc(f.field)}: ${esc(f.unknown)}</p>`; continue; }
        html += `<h4>${esc(f.field)}</h4><pre class="diff" aria-label="diff of ${esc(f.field)}">` +
          f.lines.map(([o, t]) => `<span class="${o === "+" ? "add" : o === "-" ? "del" : ""}">${esc(o + t)}</span>`).join("\n") + `</pre>`;
      }
    } else if (d.state === "changed") {
      html += `<p class="muted">The approved definition is not in the inventory, so only the new one is shown.</p>`;
    }
    html += `<h3>Definitions seen</h3><table><thead><tr><th scope="col">sha256</th><th scope="col">Seen by</th><th scope="col">When</th></tr></thead><tbody>` +
      d.versions.map((v) => `<tr><td><code>${esc(v.sha256.slice(0, 12))}</code>${v.sha256 === e.sha256 ? " (approved)" : ""}</td>` +
        `<td>${esc(v.users.map((u) => u.email).concat(v.sources).join(", "))}</td><td>${esc(v.first)} – ${esc(v.last)}</td></tr>`).join("") + `</tbody></table>`;
    if (d.choices.length) {
      html += `<h3>Argument constraints</h3><p class="hint">Allow only some values (unticked: any value the schema allows).</p>`;
      for (const c of d.choices) {
        const allowed = (e.constraints || {})[c.path] || [];
        html += `<fieldset data-path="${esc(c.path)}"><legend><code>${esc(c.path)}</code></legend>` +
          c.values.map((v, i) => `<label><input type="checkbox" value="${esc(JSON.stringify(v))}"${allowed.some((a) => JSON.stringify(a) === JSON.stringify(v)) ? " checked" : ""} id="c-${esc(c.path)}-${i}"> ${esc(String(v))}</label> `).join("") +
          `<button type="button" data-act="constrain">Save ${esc(c.path)}</button></fieldset>`;
      }
    } else if (!d.schemaKnown) {
      html += `<p class="hint">Constraints: the input schema is not in the inventory (start admin with --config reaching this upstream).</p>`;
    }
    const box = $("detail");
    box.innerHTML = html;
    box.querySelectorAll("button[data-act]").forEach((b) => b.addEventListener("click", () => {
      if (b.dataset.act === "constrain") {
        const fs = b.closest("fieldset");
        const values = [...fs.querySelectorAll("input:checked")].map((i) => JSON.parse(i.value));
        op({op: "constrain", keys: [key], path: fs.dataset.path, values});
      } else {
        op({op: b.dataset.act, keys: [key], class: $("class-choice").value || undefined});
      }
    }));
  }

  // -- events -----------------------------------------------------------------
  let filterTimer = 0;
  $("filter").addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(applyFilter, 60); });
  $("filter").addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "Enter") { ev.preventDefault(); focusRow(0); if (ev.key === "Enter" && shown[0]) showDetail(shown[0].key); }
  });
  $("state-filter").addEventListener("change", applyFilter);
  $("rows").addEventListener("click", (ev) => {
    if (ev.target.id === "more") { showMore(); return; }
    const tr = ev.target.closest("tr"); if (!tr || tr.id === "more-row") return;
    const i = Number(tr.dataset.i), r = shown[i];
    if (ev.target.type === "checkbox") { ev.target.checked ? selected.add(r.key) : selected.delete(r.key); $("selected-count").textContent = selected.size ? `${selected.size} selected` : ""; return; }
    focusRow(i, false); showDetail(r.key);
  });
  $("select-all").addEventListener("change", (ev) => { shown.forEach((r) => ev.target.checked ? selected.add(r.key) : selected.delete(r.key)); render(true); });
  $("approve").addEventListener("click", () => op({op: "approve", class: $("class-choice").value || undefined}));
  $("disable").addEventListener("click", () => op({op: "disable"}));
  $("to-pending").addEventListener("click", () => op({op: "pending"}));
  $("classify").addEventListener("click", () => { if (!$("class-choice").value) { toast("Choose a class first."); return; } op({op: "classify", class: $("class-choice").value}); });
  $("add-toolset").addEventListener("click", () => {
    const name = $("toolset-name").value.trim(); if (!name) { toast("Name the toolset."); $("toolset-name").focus(); return; }
    op({op: "toolset", toolset: name, action: "add", patterns: targets()});
  });
  const list = (s) => s.split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
  $("profile-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const members = list($("profile-members").value), sets = list($("profile-toolsets").value);
    op({op: "profile", profile: $("profile-name").value.trim(), members: members.length ? members : null,
        toolsets: sets.length ? sets : null});
  });
  $("explain-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("/api/explain", {user: $("explain-user").value});
    const out = $("explain-result");
    if (r.error) { out.textContent = r.error; return; }
    out.innerHTML = `<p>${esc(r.user)} is in profiles: ${esc(r.profiles.join(", ") || "none")}. ` +
      `${r.available.length} tools available; not available: ${esc(Object.entries(r.unavailableCounts).map(([k, v]) => `${v} ${k}`).join(", ") || "none")}.</p>` +
      `<h3>Available</h3><ul>${r.available.map((a) => `<li><code>${esc(a.key)}</code>: ${esc(a.message)}</li>`).join("")}</ul>` +
      `<h3>Not available</h3><ul>${r.unavailable.slice(0, 50).map((a) => `<li><code>${esc(a.key)}</code> (${esc(a.code)}): ${esc(a.steps.filter((s) => s.passed === false).map((s) => s.detail).join("; "))}</li>`).join("")}</ul>`;
  });
  $("publish-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("publish-result").textContent = "Publishing…";
    try {
      const r = await api("/api/publish", {expires_in_days: $("expires").value});
      $("publish-result").textContent = `Published revision ${r.revision} (${r.signed ? "signed" : "unsigned"}, expires ${r.expires_at}) to ${r.to.join(", ")}.`;
      setState(await api("/api/state"));
    } catch (e) { $("publish-result").textContent = "Not published: " + e.message; }
  });
  $("reset").addEventListener("click", () => op({op: "reset", keys: []}));
  document.addEventListener("keydown", (ev) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (ev.key === "/" && !typing) { ev.preventDefault(); $("filter").focus(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "j" || ev.key === "ArrowDown") { ev.preventDefault(); focusRow(current + 1); }
    else if (ev.key === "k" || ev.key === "ArrowUp") { ev.preventDefault(); focusRow(current - 1); }
    else if (ev.key === "Enter" && shown[current]) showDetail(shown[current].key);
    else if (ev.key === "x" && shown[current]) { const k = shown[current].key; selected.has(k) ? selected.delete(k) : selected.add(k); render(true); focusRow(current); }
    else if (ev.key === "a") op({op: "approve", class: $("class-choice").value || undefined});
    else if (ev.key === "d") op({op: "disable"});
  });

  api("/api/state").then((state) => { timings.fetched = performance.now(); setState(state); $("filter").focus(); });
})();
