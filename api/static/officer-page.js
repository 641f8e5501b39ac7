// The officer workbench: targets, match lists, the 131 ledger, visits, Excel export and import.
//
// Every value from the API is placed with textContent (Doorstep.el), never as HTML. The
// staff token comes from DoorstepStaffSession and travels only in the Authorization header.
"use strict";

(function () {
  const D = window.Doorstep;
  const Session = window.DoorstepStaffSession;
  const t = D.messages;
  const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  const MOVES = {
    signed_off: ["delivered"],
    delivered: ["interested", "declined"],
    interested: ["interviewed", "declined"],
    interviewed: ["hired", "not_hired"],
  };

  const status = document.getElementById("of-status");
  const detailStatus = document.getElementById("of-detail-status");
  let current = null;
  let importBytes = null;

  function byId(id) {
    return document.getElementById(id);
  }

  async function api(path, options) {
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, Session.authHeaders(), init.headers || {});
    const response = await fetch(D.apiUrl(path), init);
    if (response.status === 401) {
      Session.clearToken();
      showSignIn();
      throw new Error(t.of_signin);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    return { status: response.status, ok: response.ok, body: body };
  }

  function postJson(path, payload) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
  }

  function showSignIn() {
    status.textContent = "";
    byId("of-signin").hidden = false;
  }

  function fail(element, result) {
    element.textContent = D.errorText(result.status, result.body);
    element.classList.add("error");
  }

  function ok(element, text) {
    element.textContent = text;
    element.classList.remove("error");
  }

  function progress(target) {
    const delivered = target.recommendations.filter(function (r) { return r.state !== "signed_off"; }).length;
    if (target.complete) {
      return t.of_complete;
    }
    return D.format(t.of_status, {
      g: target.guidance_at ? t.of_done : t.of_not_done,
      r: delivered,
      t: target.training_offered_at ? t.of_done : t.of_not_done,
    });
  }

  async function loadTargets() {
    const result = await api("/v1/assistance/targets");
    if (!result.ok) {
      fail(status, result);
      return;
    }
    const body = byId("of-targets").querySelector("tbody");
    body.replaceChildren();
    result.body.forEach(function (target) {
      const row = document.createElement("tr");
      row.dataset.seekerId = target.seeker_id;
      [target.seeker_id, target.name, target.category_label || "", progress(target), target.next_visit_on || ""].forEach(
        function (text) {
          row.appendChild(D.el("td", null, text));
        }
      );
      const open = D.el("button", "of-open", t.of_open);
      open.type = "button";
      open.addEventListener("click", function () { openTarget(target.seeker_id, true); });
      const cell = document.createElement("td");
      cell.appendChild(open);
      row.appendChild(cell);
      body.appendChild(row);
    });
    byId("of-no-targets").hidden = result.body.length > 0;
    ok(status, "");
  }

  async function loadDueVisits() {
    const result = await api("/v1/assistance/visits/due");
    const list = byId("of-due-visits");
    list.replaceChildren();
    if (!result.ok) {
      fail(status, result);
      return;
    }
    if (result.body.length === 0) {
      list.appendChild(D.el("li", "hint", t.of_no_due_visits));
    }
    result.body.forEach(function (visit) {
      list.appendChild(D.el("li", "of-due", D.format(t.of_visit_line, { seeker: visit.seeker_id, due: visit.due_on })));
    });
  }

  // Open a target. The match list is recomputed for all of the officer's targets, which
  // takes seconds with dozens of them, so it is reloaded only when asked.
  async function openTarget(seekerId, withMatches) {
    current = seekerId;
    byId("of-detail").hidden = false;
    ok(detailStatus, t.of_loading);
    const result = await api("/v1/assistance/targets/" + encodeURIComponent(seekerId));
    if (!result.ok) {
      fail(detailStatus, result);
      return;
    }
    renderTarget(result.body);
    const loads = [loadInstitutions(seekerId)];
    if (withMatches) {
      loads.push(loadMatches(seekerId));
    }
    await Promise.all(loads);
    ok(detailStatus, "");
  }

  function renderTarget(target) {
    byId("of-detail-head").textContent = [target.seeker_id, target.name, target.category_label || ""].join(" · ");
    const guided = byId("of-guidance-done");
    guided.hidden = !target.guidance_at;
    byId("of-guidance-form").hidden = Boolean(target.guidance_at);
    if (target.guidance_at) {
      guided.textContent = D.format(t.of_guidance_done, {
        at: target.guidance_at.slice(0, 10),
        topic: t.of_topics[target.guidance_topic] || target.guidance_topic,
      });
    }
    renderRecommendations(target.recommendations);
    byId("of-sign-off").hidden = target.recommendations.length >= 3;
    const trained = byId("of-training-done");
    trained.hidden = !target.training_offered_at;
    byId("of-training-form").hidden = Boolean(target.training_offered_at);
    byId("of-training-response").hidden = !target.training_offered_at || Boolean(target.training_response);
    if (target.training_offered_at) {
      const answer = target.training_response ? " · " + t.of_training_responses[target.training_response] : "";
      trained.textContent = D.format(t.of_training_done, { name: target.training_institution }) + answer;
    }
    renderVisits(target.visits);
  }

  function renderRecommendations(items) {
    const list = byId("of-recommendations");
    list.replaceChildren();
    items.forEach(function (item) {
      const li = D.el("li", "of-recommendation");
      li.dataset.postingId = item.posting_id;
      li.appendChild(D.el("span", "of-job", (item.title || item.posting_id) + " · " + (item.company || "")));
      li.appendChild(D.el("span", "of-state", " [" + t.of_states[item.state] + "] "));
      (MOVES[item.state] || []).forEach(function (next) {
        const button = D.el("button", "of-move", t.of_moves[next]);
        button.type = "button";
        button.dataset.state = next;
        button.addEventListener("click", function () { move(item.posting_id, next); });
        li.appendChild(button);
      });
      list.appendChild(li);
    });
  }

  function renderVisits(visits) {
    const list = byId("of-visits");
    list.replaceChildren();
    visits.forEach(function (visit) {
      const li = D.el("li", visit.due ? "of-visit due" : "of-visit", visit.due_on + " ");
      const done = D.el("button", "of-visit-done", t.of_visit_done);
      done.type = "button";
      done.addEventListener("click", async function () {
        const path = "/v1/assistance/targets/" + encodeURIComponent(current) + "/visits/" + visit.visit_id + "/done";
        await report(await api(path, { method: "POST" }));
      });
      li.appendChild(done);
      list.appendChild(li);
    });
  }

  async function loadMatches(seekerId) {
    const result = await api("/v1/assistance/match-list");
    const list = byId("of-matches");
    list.replaceChildren();
    if (!result.ok) {
      fail(detailStatus, result);
      return;
    }
    const mine = result.body.targets.find(function (item) { return item.seeker_id === seekerId; });
    const matches = mine ? mine.matches : [];
    if (matches.length === 0) {
      list.appendChild(D.el("li", "hint", t.of_no_matches));
    }
    matches.forEach(function (match) {
      const li = D.el("li", match.proposed ? "of-match proposed" : "of-match");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = match.posting_id;
      box.checked = match.proposed;
      label.appendChild(box);
      label.appendChild(D.el("span", "of-job", " " + match.title + " · " + match.company));
      const notes = [];
      if (match.estimated_commute_min !== null) {
        notes.push(D.format(t.of_commute, { min: Math.round(match.estimated_commute_min) }));
      }
      if (match.public_welfare) {
        notes.push(t.of_welfare);
      }
      if (match.night_shift) {
        notes.push(t.of_night);
      }
      label.appendChild(D.el("span", "hint", notes.length ? " (" + notes.join(", ") + ")" : ""));
      li.appendChild(label);
      list.appendChild(li);
    });
  }

  async function loadInstitutions(seekerId) {
    const select = byId("of-institutions");
    const offer = byId("of-training-offer");
    // Disabled until the list is loaded, so an offer never names an empty choice.
    offer.disabled = true;
    select.replaceChildren();
    const result = await api("/v1/assistance/targets/" + encodeURIComponent(seekerId) + "/institutions");
    if (!result.ok) {
      fail(detailStatus, result);
      return;
    }
    result.body.forEach(function (item) {
      const option = D.el("option", null, item.name + " · " + Math.round(item.distance_m) + " m");
      option.value = item.institution_id;
      select.appendChild(option);
    });
    offer.disabled = result.body.length === 0;
  }

  async function report(result, withMatches) {
    if (!result.ok) {
      fail(detailStatus, result);
      return;
    }
    await openTarget(current, Boolean(withMatches));
    ok(detailStatus, t.of_saved);
    await Promise.all([loadTargets(), loadDueVisits()]);
  }

  function targetPath(suffix) {
    return "/v1/assistance/targets/" + encodeURIComponent(current) + suffix;
  }

  async function move(postingId, state) {
    await report(await postJson(targetPath("/recommendations/" + encodeURIComponent(postingId) + "/state"), { state: state }));
  }

  async function exportWorkbook(masked) {
    const response = await fetch(D.apiUrl("/v1/assistance/export.xlsx", { masked: masked }), {
      headers: Object.assign({ Accept: XLSX }, Session.authHeaders()),
    });
    if (!response.ok) {
      fail(status, { status: response.status, body: null });
      return;
    }
    const link = byId("of-download");
    link.href = URL.createObjectURL(await response.blob());
    link.download = "assistance.xlsx";
    link.click();
  }

  async function runImport(commit) {
    const out = byId("of-import-status");
    const issues = byId("of-import-issues");
    issues.replaceChildren();
    const result = await api("/v1/assistance/imports?commit=" + String(commit), {
      method: "POST",
      headers: { "Content-Type": XLSX },
      body: importBytes,
    });
    if (!result.body || result.body.issues === undefined) {
      fail(out, result);
      return;
    }
    const found = result.body;
    found.issues.forEach(function (issue) {
      issues.appendChild(D.el("li", "of-issue", D.format(t.of_import_issue, issue)));
    });
    if (found.committed) {
      ok(out, D.format(t.of_import_done, { n: found.valid_rows }));
      byId("of-import-commit").disabled = true;
      await loadTargets();
    } else if (found.issues.length) {
      fail(out, { status: 422, body: { detail: D.format(t.of_import_failed, { rows: found.rows, n: found.issues.length }) } });
      byId("of-import-commit").disabled = true;
    } else {
      ok(out, D.format(t.of_import_ok, { rows: found.rows }));
      byId("of-import-commit").disabled = false;
    }
  }

  function bind() {
    byId("of-guidance-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      await report(await postJson(targetPath("/guidance"), { topic: byId("of-guidance-topic").value }));
    });
    byId("of-sign-off").addEventListener("click", async function () {
      const chosen = Array.from(byId("of-matches").querySelectorAll("input:checked")).map(function (box) { return box.value; });
      await report(await postJson(targetPath("/recommendations"), { posting_ids: chosen }), true);
    });
    byId("of-training-offer").addEventListener("click", async function () {
      await report(await postJson(targetPath("/training"), { institution_id: byId("of-institutions").value }));
    });
    byId("of-training-response").querySelectorAll("button").forEach(function (button) {
      button.addEventListener("click", async function () {
        await report(await postJson(targetPath("/training/response"), { response: button.dataset.response }));
      });
    });
    byId("of-visit-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      await report(await postJson(targetPath("/visits"), { due_on: byId("of-visit-day").value }));
    });
    byId("of-export").addEventListener("click", function () { exportWorkbook(false); });
    byId("of-export-masked").addEventListener("click", function () { exportWorkbook(true); });
    byId("of-import-file").addEventListener("change", async function (event) {
      const file = event.target.files[0];
      importBytes = file ? await file.arrayBuffer() : null;
      byId("of-import-commit").disabled = true;
    });
    byId("of-import-check").addEventListener("click", function () {
      if (importBytes) {
        runImport(false);
      }
    });
    byId("of-import-commit").addEventListener("click", function () { runImport(true); });
    byId("of-logout").addEventListener("click", async function () {
      await api("/v1/auth/logout", { method: "POST" });
      Session.clearToken();
      window.location.replace(Session.loginUrl(D.config.lang, "logout", "/officer"));
    });
  }

  async function start() {
    bind();
    if (!Session.token()) {
      showSignIn();
      return;
    }
    const me = await api("/v1/auth/me");
    if (!me.ok) {
      fail(status, me);
      return;
    }
    const account = byId("of-me");
    account.textContent = D.format(t.of_me, { name: me.body.name_masked, org: me.body.org_id || "" });
    account.hidden = false;
    byId("of-logout").hidden = false;
    await Promise.all([loadTargets(), loadDueVisits()]);
  }

  start();
})();
