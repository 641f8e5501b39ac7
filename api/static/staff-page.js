// Staff curation page (完善锚点): list the anchors in the staff member's scope and draw
// them on the map, edit one in the form, move its pin by dragging the marker, read its
// history, merge possible duplicates and import anchors from a file. The entrance and the
// shuttle stop are typed or picked on the map (staff-points.js) in the map's coordinate
// system. The new-anchor form is in staff-create.js.
//
// Map marks show two things at once: the fill colour is the curation state and the ring
// and size are the location precision. pages.css defines both as classes, which the
// legend in staff.html reuses.
//
// Staff sign in on the login page (staff-login.js), which leaves the token in
// sessionStorage (staff-session.js). Without a token, or when the API returns 401 (30
// idle minutes, logout elsewhere, a lock), the page sends the browser back to the login
// page. The logout button ends the session on the server before it does the same.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const el = D.el;
  const Session = window.DoorstepStaffSession;
  const ANCHOR_PAGE_SIZE = Math.min(50, D.config.max_page_size);
  const TEXT_FIELDS = ["name", "address", "credit_code", "industry_code", "contact_role", "contact_phone"];
  const FLAG_FIELDS = ["key_enterprise", "above_scale_industrial"];
  // Fields the API empties through "clear" (geo.anchor_checks.CLEARABLE_FIELDS). Other
  // emptied fields are sent as an empty string, which the API validates.
  const CLEARABLE = ["credit_code", "industry_code", "size", "contact_role", "contact_phone"];
  // Target states each state may move to (geo.anchor_states.ALLOWED_TRANSITIONS). A
  // retired anchor leaves only by reactivation, which sets it back to draft.
  const TRANSITIONS = {
    draft: ["pending_review", "retired"],
    pending_review: ["verified", "rejected"],
    rejected: ["draft"],
    verified: ["retired", "pending_review"],
    retired: [],
  };
  const timeFormat = new Intl.DateTimeFormat(D.config.lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });

  function byId(id) {
    return document.getElementById(id);
  }

  const authStatus = byId("auth-status");
  const anchorsStatus = byId("anchors-status");
  const anchorList = byId("anchor-list");
  const form = byId("anchor-form");
  const saveStatus = byId("save-status");
  const conflict = byId("conflict");
  const editPanel = byId("edit-panel");

  const map = D.createMap("map");
  const listLayer = L.featureGroup().addTo(map);
  const marks = new Map(); // anchor_id -> the anchor's mark in listLayer
  let pin = null;
  const Points = window.DoorstepStaffPoints;
  const points = {
    entrance: Points.pointField(map, {
      lon: byId("f-entrance_lon"), lat: byId("f-entrance_lat"), kind: "entrance", title: t.staff_field_labels.entrance,
    }),
    shuttle: Points.pointField(map, {
      lon: byId("f-shuttle_lon"), lat: byId("f-shuttle_lat"), kind: "shuttle", title: t.staff_field_labels.shuttle_stop,
    }),
  };
  const POINT_LABELS = { entrance: t.staff_field_labels.entrance, shuttle: t.staff_field_labels.shuttle_stop };
  const pickStatus = byId("edit-pick-status");
  let pickTarget = null; // "entrance" or "shuttle" after its "在地图上选取" button

  const query = { page: 1, pages: 1 };
  let current = null; // {anchor, history} on show in the form
  let pendingState = null; // {state, reactivate} chosen with a state button
  let moved = null; // {lon, lat} in the page's coord_sys after a drag

  class SessionExpired extends Error {}

  // --- requests ------------------------------------------------------------------

  function token() {
    return Session.token();
  }

  function toLogin(reason) {
    Session.clearToken();
    window.location.replace(Session.loginUrl(D.config.lang, reason));
  }

  // Send one request with the staff token and device id and return {status, body}. A 401
  // ends the session and opens the login page.
  async function staffRequest(path, params, options) {
    if (!token()) {
      toLogin(null);
      throw new SessionExpired(t.login_error_session);
    }
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, Session.authHeaders(), init.headers || {});
    const response = await fetch(D.apiUrl(path, params), init);
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.status === 401) {
      toLogin("expired");
      throw new SessionExpired(t.login_error_session);
    }
    return { status: response.status, body: body };
  }

  // End the session on the server, then open the login page. A 401 means it had already
  // ended; any other failure is shown and the token is kept, so the user can retry.
  async function logout() {
    const response = await fetch(D.apiUrl("/v1/auth/logout"), {
      method: "POST",
      headers: Object.assign({ Accept: "application/json" }, Session.authHeaders()),
    });
    if (response.status !== 204 && response.status !== 401) {
      throw new Error("HTTP " + response.status);
    }
    toLogin("logout");
  }

  function detailText(status, body) {
    const first = body && Array.isArray(body.detail) ? body.detail[0] : null;
    if (first) {
      return (D.config.lang === "zh" && first.msg_zh) || first.msg || "HTTP " + status;
    }
    return body && typeof body.detail === "string" ? body.detail : "HTTP " + status;
  }

  // Return the body of a 2xx response, or throw an Error with the API's message.
  async function staffJson(path, params, options) {
    const result = await staffRequest(path, params, options);
    if (result.status < 200 || result.status >= 300) {
      throw new Error(detailText(result.status, result.body));
    }
    return result.body;
  }

  function showFailure(statusElement, err) {
    // The session message in authStatus stays; other status lines drop "loading".
    if (err instanceof SessionExpired) {
      if (statusElement !== authStatus) {
        statusElement.textContent = "";
      }
      return;
    }
    D.showError(statusElement, err);
  }

  // Labels come from the page's messages first, because the API's labels are Chinese
  // only and the legend uses the messages too.
  function stateLabel(anchor) {
    return t.state_labels[anchor.state] || anchor.state_label || anchor.state;
  }

  function precisionLabel(anchor) {
    return t.precision_labels[anchor.precision] || D.precisionLabel(anchor.precision, anchor.precision_label);
  }

  // --- who am I, summary -----------------------------------------------------------

  async function loadMe() {
    const me = await staffJson("/v1/staff/me");
    const box = byId("staff-me");
    box.replaceChildren(el("p", "staff-who", D.format(t.staff_me, { staff: me.staff_id, org: me.org })));
    const areas = (me.districts || []).map(function (d) { return d.name || d.code; })
      .concat((me.zones || []).map(function (z) { return typeof z === "string" ? z : z.name || z.key; }));
    box.appendChild(el("p", "staff-scope", D.format(t.staff_scope, { areas: areas.join("、") })));
    box.hidden = false;
    createForm.setScope(me);
    await loadFilingOrgs(me);
  }

  // The streets and stations of the caller's subtree, as options of the filing select:
  // one group per street, the street first. Street and station staff cannot leave an
  // anchor unfiled, so their select has no empty option.
  async function loadFilingOrgs(me) {
    const body = await staffJson("/v1/staff/filing-orgs");
    const select = field("filed_org");
    const empty = select.querySelector("option[value='']");
    select.replaceChildren();
    if (!me.filing_org) {
      select.appendChild(empty);
    }
    const groups = {};
    body.items.forEach(function (org) {
      const streetId = org.level === "street" ? org.org_id : org.parent_id;
      if (!groups[streetId]) {
        const label = org.level === "street" ? org.name : streetId;
        groups[streetId] = el("optgroup");
        groups[streetId].label = label;
        select.appendChild(groups[streetId]);
      }
      const option = el("option", null, org.name);
      option.value = org.org_id;
      option.dataset.district = org.district_code || "";
      groups[streetId].appendChild(option);
    });
  }

  // Show only the streets and stations of the anchor's district. A filing that staff of
  // another subtree made stays selectable, so saving the form does not change it.
  function fillFiling(anchor) {
    const select = field("filed_org");
    select.querySelectorAll("option").forEach(function (option) {
      option.hidden = option.value !== "" && option.dataset.district !== (anchor.district_code || "");
    });
    const value = anchor.filed_org || "";
    if (value && !select.querySelector("option[value='" + CSS.escape(value) + "']")) {
      const option = el("option", null, value);
      option.value = value;
      select.appendChild(option);
    }
    select.value = value;
  }

  function fillCounts(list, counts, labels) {
    list.replaceChildren();
    Object.keys(counts).forEach(function (key) {
      list.appendChild(el("dt", null, labels[key] || key));
      list.appendChild(el("dd", null, D.formatCount(counts[key])));
    });
  }

  async function loadSummary() {
    const body = await staffJson("/v1/staff/summary");
    const byState = {};
    const byPrecision = {};
    body.items.forEach(function (row) {
      byState[row.state] = (byState[row.state] || 0) + row.n;
      byPrecision[row.precision] = (byPrecision[row.precision] || 0) + row.n;
    });
    fillCounts(byId("summary-state"), byState, t.state_labels);
    fillCounts(byId("summary-precision"), byPrecision, t.precision_labels);
    byId("summary").hidden = false;
  }

  // --- anchor list ---------------------------------------------------------------

  // Classes of an anchor's mark: fill by state, ring and size by precision (pages.css).
  function markClass(anchor) {
    return "anchor-mark mark-state-" + anchor.state + " mark-precision-" + anchor.precision;
  }

  function markSwatch(anchor) {
    const swatch = el("span", markClass(anchor));
    swatch.setAttribute("aria-hidden", "true");
    return swatch;
  }

  function anchorItem(anchor) {
    const item = el("li");
    const button = el("button", "anchor-item");
    button.type = "button";
    button.dataset.anchorId = anchor.anchor_id;
    button.setAttribute("aria-pressed", String(Boolean(current && current.anchor.anchor_id === anchor.anchor_id)));
    button.appendChild(markSwatch(anchor));
    button.appendChild(el("span", "anchor-name", anchor.name));
    button.appendChild(el("span", "badge state-" + anchor.state, stateLabel(anchor)));
    const facts = [precisionLabel(anchor), anchor.district_name,
      D.format(t.staff_postings, { n: anchor.n_postings || 0 })];
    button.appendChild(el("span", "anchor-facts", facts.filter(Boolean).join(" · ")));
    button.addEventListener("click", function () {
      selectAnchor(anchor.anchor_id);
    });
    item.appendChild(button);
    return item;
  }

  // Draw (or redraw) an anchor's mark. iconSize null leaves the size and centring to the
  // mark's CSS classes, which differ by precision.
  function anchorMark(anchor) {
    const old = marks.get(anchor.anchor_id);
    if (old) {
      listLayer.removeLayer(old);
      marks.delete(anchor.anchor_id);
    }
    if (anchor.precision === D.CITY || typeof anchor.lon !== "number") {
      return;
    }
    const mark = L.marker([anchor.lat, anchor.lon], {
      icon: L.divIcon({ className: markClass(anchor), iconSize: null }),
      keyboard: false,
    });
    mark.bindTooltip(el("span", null, D.format(t.staff_mark_tooltip, {
      name: anchor.name,
      state: stateLabel(anchor),
      precision: precisionLabel(anchor),
    })));
    mark.on("click", function () { selectAnchor(anchor.anchor_id); });
    listLayer.addLayer(mark);
    mark.getElement().dataset.anchorId = anchor.anchor_id;
    marks.set(anchor.anchor_id, mark);
  }

  async function loadAnchors() {
    anchorsStatus.classList.remove("error");
    anchorsStatus.textContent = t.loading;
    try {
      const body = await staffJson("/v1/staff/anchors", {
        state: byId("state-filter").value || null,
        q: byId("name-filter").value.trim() || null,
        limit: ANCHOR_PAGE_SIZE,
        offset: (query.page - 1) * ANCHOR_PAGE_SIZE,
      });
      anchorList.replaceChildren();
      listLayer.clearLayers();
      marks.clear();
      body.items.forEach(function (anchor) {
        anchorList.appendChild(anchorItem(anchor));
        anchorMark(anchor);
      });
      anchorsStatus.textContent = body.items.length === 0 ? t.staff_no_anchors : "";
      query.pages = Math.max(1, Math.ceil(body.total / ANCHOR_PAGE_SIZE));
      byId("anchor-pager").hidden = body.total === 0;
      byId("anchors-prev").disabled = query.page <= 1;
      byId("anchors-next").disabled = query.page >= query.pages;
      byId("anchors-page-status").textContent = D.format(t.staff_anchor_page_status, {
        page: D.formatCount(query.page), total: D.formatCount(body.total),
      });
    } catch (err) {
      showFailure(anchorsStatus, err);
    }
  }

  // Refresh an anchor's list item and mark. An anchor missing from the page, such as a
  // new one on another page, is put first in the list.
  function showListed(anchor) {
    const old = anchorList.querySelector('button[data-anchor-id="' + CSS.escape(anchor.anchor_id) + '"]');
    if (old) {
      old.parentElement.replaceWith(anchorItem(anchor));
    } else {
      anchorList.prepend(anchorItem(anchor));
      anchorsStatus.textContent = "";
    }
    anchorMark(anchor);
  }

  // --- the form ------------------------------------------------------------------

  function field(name) {
    return byId("f-" + name);
  }

  function clearFieldErrors() {
    form.querySelectorAll(".field-error").forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
  }

  // Show a message in a field's error slot and mark the inputs of its row as invalid.
  // Unknown fields go to the form's slot.
  function showFieldError(name, text) {
    const slot = byId("err-" + name) || byId("form-errors");
    slot.textContent = slot.textContent ? slot.textContent + "；" + text : text;
    slot.hidden = false;
    const row = slot.closest(".form-row");
    if (row) {
      row.querySelectorAll("input, select, textarea").forEach(function (node) {
        node.setAttribute("aria-invalid", "true");
      });
    }
  }

  // --- entrance and shuttle stop ---------------------------------------------------

  function coordinateText(value) {
    return typeof value === "number" ? value.toFixed(6) : "";
  }

  function fillPoints(anchor) {
    const entrance = anchor.entrance || {};
    const stop = anchor.shuttle_stop || {};
    field("entrance_lon").value = coordinateText(entrance.lon);
    field("entrance_lat").value = coordinateText(entrance.lat);
    field("shuttle_name").value = stop.name || "";
    field("shuttle_lon").value = coordinateText(stop.lon);
    field("shuttle_lat").value = coordinateText(stop.lat);
    stopPick();
    showPoints();
  }

  function showPoints() {
    points.entrance.show();
    points.shuttle.show();
  }

  function hidePoints() {
    points.entrance.remove();
    points.shuttle.remove();
  }

  function startPick(target) {
    pickTarget = target;
    map.getContainer().classList.add("picking");
    pickStatus.textContent = Points.pickPrompt(POINT_LABELS[target]);
  }

  function stopPick() {
    pickTarget = null;
    map.getContainer().classList.remove("picking");
    pickStatus.textContent = "";
  }

  function onMapClick(event) {
    if (pickTarget === null || form.hidden || editPanel.hidden) {
      return;
    }
    points[pickTarget].set(event.latlng);
    stopPick();
  }

  function clearPoint(target) {
    points[target].clear();
    if (target === "shuttle") {
      field("shuttle_name").value = "";
    }
    if (pickTarget === target) {
      stopPick();
    }
  }

  // Equal when both are absent, or both round to the same 6 decimals (about 0.1 m).
  function sameCoordinate(typed, stored) {
    if (typed === null || typeof stored !== "number") {
      return typed === null && typeof stored !== "number";
    }
    return typed.toFixed(6) === stored.toFixed(6);
  }

  // Add the entrance and shuttle-stop changes, typed in the page's coord_sys. Emptied
  // points go to "clear". An incomplete point is sent as it is, so the API names
  // the missing part beside the field.
  function addPointChanges(anchor, typed, changes, clear) {
    const entrance = anchor.entrance || {};
    const entranceEmpty = typed.entrance.lon === null && typed.entrance.lat === null;
    if (entranceEmpty && anchor.entrance) {
      clear.push("entrance");
    } else if (!sameCoordinate(typed.entrance.lon, entrance.lon) || !sameCoordinate(typed.entrance.lat, entrance.lat)) {
      changes.entrance_lon = typed.entrance.lon;
      changes.entrance_lat = typed.entrance.lat;
    }

    const stop = anchor.shuttle_stop || {};
    const name = field("shuttle_name").value.trim();
    const stopEmpty = name === "" && typed.shuttle.lon === null && typed.shuttle.lat === null;
    if (stopEmpty && anchor.shuttle_stop) {
      clear.push("shuttle_stop");
    } else if (!stopEmpty && (name !== (stop.name || "")
        || !sameCoordinate(typed.shuttle.lon, stop.lon) || !sameCoordinate(typed.shuttle.lat, stop.lat))) {
      changes.shuttle_stop = { name: name, lon: typed.shuttle.lon, lat: typed.shuttle.lat };
    }
  }

  // Read both points and report non-numbers beside their fields. Return null when one is invalid.
  function readPoints() {
    const entrance = points.entrance.readChecked(function (message) { showFieldError("entrance", message); });
    const shuttle = points.shuttle.readChecked(function (message) { showFieldError("shuttle_stop", message); });
    return entrance === undefined || shuttle === undefined ? null : { entrance: entrance, shuttle: shuttle };
  }

  function placePin(anchor) {
    if (pin) {
      map.removeLayer(pin);
      pin = null;
    }
    if (typeof anchor.lon !== "number" || typeof anchor.lat !== "number") {
      return;
    }
    pin = L.marker([anchor.lat, anchor.lon], {
      draggable: true,
      autoPan: true,
      zIndexOffset: 1000, // above the anchor's own mark, which lies at the same point
      title: anchor.name,
      icon: L.divIcon({ className: "staff-pin", iconSize: [22, 22] }),
    }).addTo(map);
    pin.on("dragend", function () {
      const point = pin.getLatLng();
      moved = { lon: point.lng, lat: point.lat };
      field("lon").value = point.lng.toFixed(6);
      field("lat").value = point.lat.toFixed(6);
      byId("pin-moved").hidden = false;
    });
    map.setView([anchor.lat, anchor.lon], Math.max(map.getZoom(), 14), { animate: false });
  }

  function stateButton(label, target, reactivate) {
    const button = el("button", "state-button", label);
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      const again = pendingState && pendingState.state === target;
      byId("state-actions").querySelectorAll("button").forEach(function (other) {
        other.setAttribute("aria-pressed", "false");
      });
      pendingState = again ? null : { state: target, reactivate: reactivate };
      button.setAttribute("aria-pressed", String(!again));
      const note = byId("state-pending");
      note.hidden = again;
      note.textContent = again ? "" : D.format(t.staff_state_pending, { state: t.state_labels[target] });
    });
    return button;
  }

  function renderStateActions(anchor) {
    const box = byId("state-actions");
    box.replaceChildren();
    (TRANSITIONS[anchor.state] || []).forEach(function (target) {
      box.appendChild(stateButton(D.format(t.staff_state_to, { state: t.state_labels[target] }), target, false));
    });
    if (anchor.state === "retired") {
      box.appendChild(stateButton(t.staff_reactivate, "draft", true));
    }
    if (!box.firstChild) {
      box.appendChild(el("span", "hint", t.staff_no_state_actions));
    }
    byId("state-pending").hidden = true;
  }

  function fillForm(anchor) {
    TEXT_FIELDS.forEach(function (name) {
      field(name).value = anchor[name] || "";
    });
    FLAG_FIELDS.forEach(function (name) {
      field(name).checked = Boolean(anchor[name]);
    });
    field("size").value = anchor.size || "";
    fillFiling(anchor);
    field("shift_times").value = (anchor.shift_times || []).join(", ");
    field("lon").value = typeof anchor.lon === "number" ? anchor.lon.toFixed(6) : "";
    field("lat").value = typeof anchor.lat === "number" ? anchor.lat.toFixed(6) : "";
    field("reason").value = "";
    const meta = [stateLabel(anchor), precisionLabel(anchor),
      anchor.district_name, anchor.industry_name];
    byId("anchor-meta").textContent = meta.filter(Boolean).join(" · ");
    const version = byId("anchor-version");
    version.textContent = D.format(t.staff_version, { version: anchor.version });
    version.hidden = false;
    pendingState = null;
    moved = null;
    byId("pin-moved").hidden = true;
    renderStateActions(anchor);
    clearFieldErrors();
    form.hidden = false;
    byId("editor-hint").hidden = true;
    placePin(anchor);
    fillPoints(anchor);
  }

  function valueText(value) {
    if (value === null || value === undefined || value === "") {
      return t.staff_empty_value;
    }
    if (typeof value === "boolean") {
      return value ? t.staff_yes : t.staff_no;
    }
    if (Array.isArray(value)) {
      return value.length ? value.join(", ") : t.staff_empty_value;
    }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function historyItem(entry) {
    const item = el("li", "history-entry");
    const at = entry.at ? timeFormat.format(new Date(entry.at)) : "";
    item.appendChild(el("p", "history-head", D.format(t.staff_history_entry,
      { version: entry.version, actor: entry.actor, at: at })));
    if (entry.reason) {
      item.appendChild(el("p", "history-reason", entry.reason));
    }
    if (entry.state) {
      item.appendChild(el("p", "history-state", D.format(t.staff_history_state,
        { state: t.state_labels[entry.state] || entry.state })));
    }
    const changes = el("ul", "history-changes");
    (entry.changes || []).forEach(function (change) {
      const row = el("li");
      row.appendChild(el("span", "change-field", t.staff_field_labels[change.field] || change.field));
      row.appendChild(el("span", "change-old", valueText(change.old)));
      row.appendChild(el("span", "change-arrow", "→"));
      row.appendChild(el("span", "change-new", valueText(change.new)));
      changes.appendChild(row);
    });
    item.appendChild(changes);
    return item;
  }

  function renderHistory(history) {
    const list = byId("history-list");
    list.replaceChildren();
    const ordered = (history || []).slice().sort(function (a, b) { return b.version - a.version; });
    ordered.forEach(function (entry) { list.appendChild(historyItem(entry)); });
    if (ordered.length === 0) {
      list.appendChild(el("li", "hint", t.staff_history_empty));
    }
  }

  // Show an anchor in the form; return whether it loaded.
  async function selectAnchor(anchorId) {
    if (createForm.isOpen()) {
      createForm.close(false);
    }
    saveStatus.classList.remove("error");
    saveStatus.textContent = t.loading;
    try {
      const body = await staffJson("/v1/staff/anchors/" + encodeURIComponent(anchorId));
      current = { anchor: body.anchor, history: body.history };
      conflict.hidden = true;
      fillForm(body.anchor);
      renderHistory(body.history);
      showListed(body.anchor);
      anchorList.querySelectorAll("button.anchor-item").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.dataset.anchorId === anchorId));
      });
      saveStatus.textContent = "";
      return true;
    } catch (err) {
      showFailure(saveStatus, err);
      return false;
    }
  }

  function shiftList(text) {
    return text.split(/[,，;；\s]+/).filter(Boolean);
  }

  // The changed fields only, plus "clear" for emptied optional fields. typed contains the
  // entrance and shuttle-stop points from readPoints.
  function collectChanges(anchor, typed) {
    const changes = {};
    const clear = [];
    TEXT_FIELDS.forEach(function (name) {
      const value = field(name).value.trim();
      if (value === (anchor[name] || "")) {
        return;
      }
      if (value === "" && CLEARABLE.indexOf(name) !== -1) {
        clear.push(name);
      } else {
        changes[name] = value;
      }
    });
    const size = field("size").value;
    if (size !== (anchor.size || "")) {
      if (size === "") {
        clear.push("size");
      } else {
        changes.size = size;
      }
    }
    const filedOrg = field("filed_org").value;
    if (filedOrg !== (anchor.filed_org || "")) {
      if (filedOrg === "") {
        clear.push("filed_org");
      } else {
        changes.filed_org = filedOrg;
      }
    }
    FLAG_FIELDS.forEach(function (name) {
      if (field(name).checked !== Boolean(anchor[name])) {
        changes[name] = field(name).checked;
      }
    });

    const shifts = shiftList(field("shift_times").value);
    if (shifts.join(",") !== (anchor.shift_times || []).join(",")) {
      changes.shift_times = shifts;
    }
    if (moved) {
      changes.lon = Number(moved.lon.toFixed(6));
      changes.lat = Number(moved.lat.toFixed(6));
    }
    addPointChanges(anchor, typed, changes, clear);
    if (moved || "entrance_lon" in changes || "shuttle_stop" in changes) {
      changes.coord_sys = D.config.coord_sys;
    }

    if (pendingState) {
      changes.state = pendingState.state;
      if (pendingState.reactivate) {
        changes.reactivate = true;
      }
    }
    if (clear.length) {
      changes.clear = clear;
    }
    return changes;
  }

  function showConflict(body) {
    const first = body && Array.isArray(body.detail) ? body.detail[0] : null;
    const version = first && first.current_version !== undefined ? first.current_version : "?";
    byId("conflict-text").textContent = D.format(t.staff_conflict, { version: version });
    conflict.hidden = false;
    saveStatus.textContent = "";
  }

  function showInvalid(status, body) {
    const first = body && Array.isArray(body.detail) ? body.detail[0] : null;
    const errors = first && Array.isArray(first.errors) ? first.errors : [];
    errors.forEach(function (error) {
      showFieldError(error.field, (D.config.lang === "zh" && error.msg_zh) || error.msg || error.rule);
    });
    if (errors.length === 0) {
      showFieldError("form", detailText(status, body));
    }
    saveStatus.textContent = t.staff_invalid;
    saveStatus.classList.add("error");
  }

  async function save(event) {
    event.preventDefault();
    clearFieldErrors();
    saveStatus.classList.remove("error");
    const anchor = current.anchor;
    const reason = field("reason").value.trim();
    const typed = readPoints();
    if (!reason) {
      showFieldError("reason", t.staff_reason_missing);
    }
    if (!reason || typed === null) {
      saveStatus.textContent = t.staff_invalid;
      saveStatus.classList.add("error");
      return;
    }
    const changes = collectChanges(anchor, typed);
    if (Object.keys(changes).length === 0) {
      saveStatus.textContent = t.staff_no_changes;
      return;
    }
    saveStatus.textContent = t.staff_saving;
    const payload = { expected_version: anchor.version, reason: reason, changes: changes };
    try {
      const result = await staffRequest("/v1/staff/anchors/" + encodeURIComponent(anchor.anchor_id), null, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      if (result.status === 409) {
        showConflict(result.body);
      } else if (result.status === 422) {
        showInvalid(result.status, result.body);
      } else if (result.status >= 200 && result.status < 300) {
        await selectAnchor(anchor.anchor_id);
        saveStatus.textContent = D.format(t.staff_saved, { version: result.body.anchor.version });
        loadSummary().catch(function (err) { showFailure(authStatus, err); });
      } else {
        throw new Error(detailText(result.status, result.body));
      }
    } catch (err) {
      showFailure(saveStatus, err);
    }
  }

  // --- duplicates ----------------------------------------------------------------

  function duplicateItem(pair, index) {
    const item = el("li", "duplicate");
    const group = "survivor-" + index;
    [["a", pair.anchor_id_a, pair.name_a], ["b", pair.anchor_id_b, pair.name_b]].forEach(function (side) {
      const label = el("label", "duplicate-choice");
      const radio = el("input");
      radio.type = "radio";
      radio.name = group;
      radio.value = side[1];
      radio.checked = side[0] === "a";
      label.appendChild(radio);
      label.appendChild(el("span", "keep", t.staff_keep));
      label.appendChild(el("span", "anchor-name", side[2]));
      item.appendChild(label);
    });

    // distance_m is null when one of the pair has no point on the map.
    const facts = typeof pair.distance_m === "number"
      ? D.format(t.staff_duplicate_facts, {
        distance: Math.round(pair.distance_m), similarity: Number(pair.similarity).toFixed(2),
      })
      : null;
    item.appendChild(el("p", "duplicate-facts", [pair.reason, facts].filter(Boolean).join(" · ")));
    const reason = el("input", "merge-reason");
    reason.type = "text";
    reason.maxLength = 500;
    reason.placeholder = t.staff_merge_reason_placeholder;
    item.appendChild(reason);

    const button = el("button", "merge-button", t.staff_merge);
    button.type = "button";
    const status = el("p", "merge-status");
    button.addEventListener("click", function () {
      const survivor = item.querySelector("input[type=radio]:checked").value;
      const other = survivor === pair.anchor_id_a ? pair.anchor_id_b : pair.anchor_id_a;
      merge(survivor, other, reason.value.trim(), status);
    });
    item.appendChild(button);
    item.appendChild(status);
    return item;
  }

  async function merge(survivorId, mergedId, reason, status) {
    status.classList.remove("error");
    if (!reason) {
      status.textContent = t.staff_reason_missing;
      status.classList.add("error");
      return;
    }
    try {
      // The versions the merge is based on, read now so a stale pair is rejected with 409.
      const survivor = await staffJson("/v1/staff/anchors/" + encodeURIComponent(survivorId));
      const merged = await staffJson("/v1/staff/anchors/" + encodeURIComponent(mergedId));
      const versions = {};
      versions[survivorId] = survivor.anchor.version;
      versions[mergedId] = merged.anchor.version;
      const body = await staffJson("/v1/staff/anchors/merge", null, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ survivor_id: survivorId, merged_ids: [mergedId], expected_versions: versions, reason: reason }),
      });
      byId("duplicates-status").textContent = D.format(t.staff_merged, { n: body.moved_postings });
      loadDuplicates();
      loadAnchors();
    } catch (err) {
      showFailure(status, err);
    }
  }

  async function loadDuplicates() {
    const status = byId("duplicates-status");
    const list = byId("duplicate-list");
    try {
      const body = await staffJson("/v1/staff/duplicates");
      list.replaceChildren();
      body.items.forEach(function (pair, index) { list.appendChild(duplicateItem(pair, index)); });
      if (body.items.length === 0) {
        status.textContent = t.staff_no_duplicates;
      }
    } catch (err) {
      showFailure(status, err);
    }
  }

  // --- import --------------------------------------------------------------------

  function showRejected(rows) {
    const table = byId("import-rejected");
    const tbody = table.querySelector("tbody");
    tbody.replaceChildren();
    rows.forEach(function (row) {
      const tr = el("tr");
      tr.appendChild(el("td", null, row.row));
      tr.appendChild(el("td", null, t.staff_field_labels[row.field] || row.field));
      tr.appendChild(el("td", null, (D.config.lang === "zh" && row.reason_zh) || row.reason));
      tbody.appendChild(tr);
    });
    table.hidden = rows.length === 0;
  }

  async function sendImport(dryRun) {
    const status = byId("import-status");
    const commit = byId("import-commit");
    const file = byId("import-file").files[0];
    status.classList.remove("error");
    commit.disabled = true;
    if (!file) {
      status.textContent = t.staff_import_no_file;
      status.classList.add("error");
      return;
    }
    const data = new FormData();
    data.append("file", file);
    status.textContent = t.loading;
    try {
      const body = await staffJson("/v1/staff/imports", { dry_run: String(dryRun) }, { method: "POST", body: data });
      const rejected = body.rejected || [];
      showRejected(rejected);
      if (!dryRun) {
        status.textContent = D.format(t.staff_import_done, { n: body.accepted });
        loadAnchors();
        loadSummary().catch(function (err) { showFailure(authStatus, err); });
      } else if (body.ok) {
        status.textContent = D.format(t.staff_import_ok, { n: body.accepted });
        commit.disabled = false;
      } else {
        status.textContent = D.format(t.staff_import_rejected, { n: rejected.length, accepted: body.accepted });
        status.classList.add("error");
      }
    } catch (err) {
      showFailure(status, err);
    }
  }

  // --- new anchors ---------------------------------------------------------------

  const createForm = window.DoorstepStaffCreate.setup({
    map: map,
    request: staffRequest,
    detailText: detailText,
    showFailure: showFailure,
    // The edit pin leaves the map while the new-anchor form is open and comes back as it
    // was, an unsaved drag included.
    onOpen: function () {
      editPanel.hidden = true;
      stopPick();
      hidePoints();
      if (pin) {
        map.removeLayer(pin);
      }
    },
    onClose: function () {
      editPanel.hidden = false;
      if (pin) {
        pin.addTo(map);
      }
      if (!form.hidden) {
        showPoints();
      }
    },
    onCreated: showCreated,
  });

  async function showCreated(anchor) {
    await loadAnchors();
    if (await selectAnchor(anchor.anchor_id)) {
      saveStatus.textContent = D.format(t.staff_created, { name: anchor.name });
    }
    loadSummary().catch(function (err) { showFailure(authStatus, err); });
  }

  // --- tabs, session, events -----------------------------------------------------

  function showTab(name) {
    ["anchors", "duplicates", "import"].forEach(function (other) {
      byId("tab-" + other).setAttribute("aria-selected", String(other === name));
      byId("panel-" + other).hidden = other !== name;
    });
    if (name === "duplicates" && token()) {
      loadDuplicates();
    }
  }

  function startSession() {
    authStatus.classList.remove("error");
    authStatus.textContent = "";
    byId("create-open").hidden = false;
    loadMe().catch(function (err) { showFailure(authStatus, err); });
    loadSummary().catch(function (err) { showFailure(authStatus, err); });
    loadAnchors();
  }

  byId("logout").addEventListener("click", function () {
    logout().catch(function (err) { D.showError(authStatus, err); });
  });
  byId("anchor-filter").addEventListener("submit", function (event) {
    event.preventDefault();
    query.page = 1;
    loadAnchors();
  });
  byId("state-filter").addEventListener("change", function () {
    query.page = 1;
    loadAnchors();
  });
  byId("anchors-prev").addEventListener("click", function () {
    query.page = Math.max(1, query.page - 1);
    loadAnchors();
  });
  byId("anchors-next").addEventListener("click", function () {
    query.page = Math.min(query.pages, query.page + 1);
    loadAnchors();
  });
  form.addEventListener("submit", save);
  form.querySelectorAll(".pick-button").forEach(function (button) {
    const target = button.dataset.target;
    button.addEventListener("click", button.classList.contains("clear-point")
      ? function () { clearPoint(target); }
      : function () { startPick(target); });
  });
  ["entrance_lon", "entrance_lat", "shuttle_lon", "shuttle_lat"].forEach(function (name) {
    field(name).addEventListener("change", showPoints);
  });
  map.on("click", onMapClick);
  byId("create-open").addEventListener("click", function () { createForm.open(); });
  byId("reset").addEventListener("click", function () {
    if (current) {
      fillForm(current.anchor);
    }
  });
  byId("conflict-refresh").addEventListener("click", function () {
    conflict.hidden = true;
    selectAnchor(current.anchor.anchor_id);
  });
  ["anchors", "duplicates", "import"].forEach(function (name) {
    byId("tab-" + name).addEventListener("click", function () { showTab(name); });
  });
  byId("import-form").addEventListener("submit", function (event) {
    event.preventDefault();
    sendImport(true);
  });
  byId("import-file").addEventListener("change", function () {
    byId("import-commit").disabled = true;
  });
  byId("import-commit").addEventListener("click", function () { sendImport(false); });

  D.addDistricts(map, anchorsStatus, function () { return pin === null; });
  if (token()) {
    startSession();
  } else {
    toLogin(null);
  }
})();
