// New-anchor form of the staff page (新增锚点): choose the point by clicking the map or
// type it with its coordinate system, fill the optional fields and POST /v1/staff/anchors.
//
// Each submission attempt gets one Idempotency-Key. The key is kept while the outcome is
// unknown (a network error or a 5xx response) and sent again when the user resubmits the
// same form, so the server creates one anchor however often the request arrives. A
// changed form is a new attempt with a new key, because the server rejects a key reused
// with another body.
"use strict";

window.DoorstepStaffCreate = (function () {
  const D = window.Doorstep;
  const t = D.messages;
  const el = D.el;
  const Points = window.DoorstepStaffPoints;

  // Optional text inputs sent in "details" when not empty.
  const DETAIL_TEXTS = ["address", "credit_code", "industry_code", "contact_role", "contact_phone"];
  const DETAIL_SELECTS = ["size", "district_code", "zone_key"];
  const DETAIL_FLAGS = ["key_enterprise", "above_scale_industrial"];
  // Error slot of each field name the API can report, where it differs from the name.
  // Pydantic names the JSON key (lon, entrance_lon); the rule checks name the concept (pin).
  const ERROR_SLOTS = {
    pin: "point",
    lon: "point",
    lat: "point",
    coord_sys: "point",
    location: "point",
    entrance_lon: "entrance",
    entrance_lat: "entrance",
  };
  // Location parts that are containers, not fields, in a pydantic error's "loc".
  const LOC_CONTAINERS = ["body", "details", "header", "query", "path"];
  // Prefix of each point's lon and lat inputs (new-lon, new-entrance_lon, new-shuttle_lon).
  const POINT_PREFIXES = { pin: "", entrance: "entrance_", shuttle: "shuttle_" };

  function byId(id) {
    return document.getElementById(id);
  }

  function input(name) {
    return byId("new-" + name);
  }

  // A random key of 32 hex digits or a UUID. crypto.randomUUID exists only in secure
  // contexts (HTTPS or loopback), so a page served over plain HTTP on a LAN host falls
  // back to crypto.getRandomValues, which every context has.
  function newIdempotencyKey() {
    if (typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (byte) { return byte.toString(16).padStart(2, "0"); }).join("");
  }

  // Wire the form. options: map, request (the page's staff request function), detailText,
  // showFailure, and the callbacks onOpen(), onClose() and onCreated(anchor).
  function setup(options) {
    const map = options.map;
    const panel = byId("create-panel");
    const form = byId("create-form");
    const status = byId("create-status");
    const pickStatus = byId("new-pick-status");
    const submitButton = byId("create-submit");
    // The pin is larger than the optional points, so it is easier to drag.
    const points = {};
    Object.keys(POINT_PREFIXES).forEach(function (target) {
      const prefix = POINT_PREFIXES[target];
      points[target] = Points.pointField(map, {
        lon: input(prefix + "lon"),
        lat: input(prefix + "lat"),
        kind: target,
        size: target === "pin" ? 18 : 14,
        draggable: target === "pin",
      });
    });
    let pickTarget = "pin";
    // NOTE: the attempt lives in page memory only, so a retry after reloading the page
    // sends a new key and may create a second anchor.
    let attempt = null; // {key, body} of a submission whose outcome is unknown
    let sending = false;

    // --- points on the map ---------------------------------------------------------

    function inPageSystem() {
      return input("coord_sys").value === D.config.coord_sys;
    }

    function anyPointTyped() {
      return Object.keys(points).some(function (target) { return points[target].anyTyped(); });
    }

    // Draw a target's typed point on the map. Only points in the basemap's system can be drawn.
    function showPoint(target) {
      if (inPageSystem()) {
        points[target].show();
      } else {
        points[target].remove();
      }
    }

    // Bring a typed pin into view; a clicked one is in view already.
    function revealPin() {
      const latlng = points.pin.latLng();
      if (latlng && !map.getBounds().contains(latlng)) {
        map.setView(latlng, Math.max(map.getZoom(), 14), { animate: false });
      }
    }

    function showAllPoints() {
      Object.keys(POINT_PREFIXES).forEach(showPoint);
      pickStatus.textContent = inPageSystem() || !anyPointTyped()
        ? ""
        : D.format(t.staff_point_not_shown, { sys: t.staff_coord_sys_labels[D.config.coord_sys] });
    }

    function onMapClick(event) {
      if (panel.hidden) {
        return;
      }
      // A click gives basemap coordinates. It switches the form to the basemap's system
      // only when no point is typed, because a typed point would change meaning.
      if (!inPageSystem()) {
        if (anyPointTyped()) {
          pickStatus.textContent = D.format(t.staff_pick_other_sys, {
            sys: t.staff_coord_sys_labels[D.config.coord_sys],
          });
          return;
        }
        input("coord_sys").value = D.config.coord_sys;
      }
      points[pickTarget].set(event.latlng);
      pickTarget = "pin";
      pickStatus.textContent = "";
    }

    function startPick(target) {
      pickTarget = target;
      const label = target === "entrance" ? t.staff_field_labels.entrance : t.staff_field_labels.shuttle_stop;
      pickStatus.textContent = Points.pickPrompt(label);
    }

    // --- errors ----------------------------------------------------------------------

    function clearErrors() {
      form.querySelectorAll(".field-error").forEach(function (node) {
        node.textContent = "";
        node.hidden = true;
      });
      form.querySelectorAll("[aria-invalid]").forEach(function (node) {
        node.removeAttribute("aria-invalid");
      });
      status.classList.remove("error");
    }

    // Show a message in the error slot of a field name; unknown names go to the form slot.
    function showError(field, text) {
      const name = ERROR_SLOTS[field] || field;
      const slot = byId("new-" + name + "-error") || byId("new-form-error");
      slot.textContent = slot.textContent ? slot.textContent + "；" + text : text;
      slot.hidden = false;
      const row = slot.closest(".form-row");
      if (row) {
        row.querySelectorAll("input, select, textarea").forEach(function (node) {
          node.setAttribute("aria-invalid", "true");
        });
      }
    }

    function localText(item) {
      return (D.config.lang === "zh" && item.msg_zh) || item.msg || item.rule || "";
    }

    // Field of a pydantic error: the first part of "loc" that is not a container, so
    // ["body", "details", "shuttle_stop", "lon"] belongs to the shuttle stop.
    function locField(loc) {
      const parts = (Array.isArray(loc) ? loc : []).filter(function (part) {
        return typeof part === "string" && LOC_CONTAINERS.indexOf(part) === -1;
      });
      return parts.length ? parts[0] : "form";
    }

    // Place the errors of a 409 or 422 response beside their fields.
    function showResponseErrors(result) {
      const details = result.body && Array.isArray(result.body.detail) ? result.body.detail : [];
      details.forEach(function (item) {
        if (Array.isArray(item.errors) && item.errors.length) {
          item.errors.forEach(function (error) { showError(error.field, localText(error)); });
        } else if (item.type === "DuplicateAnchorError") {
          // The store reports a credit code that another anchor already has.
          showError("credit_code", localText(item));
        } else {
          showError(locField(item.loc), localText(item));
        }
      });
      if (details.length === 0) {
        showError("form", options.detailText(result.status, result.body));
      }
      status.textContent = t.staff_create_invalid;
      status.classList.add("error");
    }

    // --- the request body --------------------------------------------------------------

    // Read one point; report a non-number in the slot and return undefined for it.
    function readPoint(target, slot) {
      return points[target].readChecked(function (message) { showError(slot, message); });
    }

    function shiftList(text) {
      return text.split(/[,，;；\s]+/).filter(Boolean);
    }

    function readDetails() {
      const details = {};
      DETAIL_TEXTS.concat(DETAIL_SELECTS).forEach(function (name) {
        const value = input(name).value.trim();
        if (value) {
          details[name] = value;
        }
      });
      // Unchecked flags are left out: a new anchor starts with both false.
      DETAIL_FLAGS.forEach(function (name) {
        if (input(name).checked) {
          details[name] = true;
        }
      });
      const shifts = shiftList(input("shift_times").value);
      if (shifts.length) {
        details.shift_times = shifts;
      }
      return details;
    }

    // Add the optional entrance and shuttle stop; false when one has a non-number.
    function addOptionalPoints(details) {
      const entrance = readPoint("entrance", "entrance");
      const shuttle = readPoint("shuttle", "shuttle_stop");
      if (entrance === undefined || shuttle === undefined) {
        return false;
      }
      if (entrance.lon !== null || entrance.lat !== null) {
        details.entrance_lon = entrance.lon;
        details.entrance_lat = entrance.lat;
      }
      const stopName = input("shuttle_name").value.trim();
      if (stopName || shuttle.lon !== null || shuttle.lat !== null) {
        details.shuttle_stop = { name: stopName, lon: shuttle.lon, lat: shuttle.lat };
      }
      return true;
    }

    // Build the request body, or return null after marking the fields the page can check:
    // the required ones and numbers. The API checks the rest and the page shows its errors.
    function readBody() {
      const name = input("name").value.trim();
      const reason = input("reason").value.trim();
      const pin = readPoint("pin", "point");
      const details = readDetails();
      let complete = addOptionalPoints(details) && pin !== undefined;
      if (!name) {
        showError("name", t.staff_name_missing);
        complete = false;
      }
      if (pin !== undefined && (pin.lon === null || pin.lat === null)) {
        showError("point", t.staff_point_missing);
        complete = false;
      }
      if (!reason) {
        showError("reason", t.staff_create_reason_missing);
        complete = false;
      }
      if (!complete) {
        return null;
      }
      return {
        name: name,
        lon: pin.lon,
        lat: pin.lat,
        coord_sys: input("coord_sys").value,
        reason: reason,
        details: details,
      };
    }

    // --- submit --------------------------------------------------------------------------

    function showRetry(reason) {
      status.textContent = D.format(t.staff_create_retry, { reason: reason });
      status.classList.add("error");
    }

    async function send(body) {
      let result;
      try {
        result = await options.request("/v1/staff/anchors", null, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Idempotency-Key": attempt.key },
          body: body,
        });
      } catch (err) {
        // fetch rejects with a TypeError when no response arrived, so the key stays for
        // the retry.
        if (err instanceof TypeError) {
          showRetry(t.staff_network_failed);
          return;
        }
        throw err;
      }
      if (result.status >= 500) {
        // The outcome is unknown, so the key stays for the retry.
        showRetry(options.detailText(result.status, result.body));
        return;
      }
      attempt = null;
      if (result.status === 409 || result.status === 422) {
        showResponseErrors(result);
      } else if (result.status >= 200 && result.status < 300) {
        const anchor = result.body.anchor;
        close(true);
        options.onCreated(anchor);
      } else {
        throw new Error(options.detailText(result.status, result.body));
      }
    }

    async function submit(event) {
      event.preventDefault();
      if (sending) {
        return; // a second click while the first request runs sends nothing
      }
      clearErrors();
      const body = readBody();
      if (body === null) {
        status.textContent = t.staff_create_invalid;
        status.classList.add("error");
        return;
      }
      const text = JSON.stringify(body);
      if (attempt === null || attempt.body !== text) {
        attempt = { key: newIdempotencyKey(), body: text };
      }

      sending = true;
      submitButton.disabled = true;
      status.textContent = t.staff_creating;
      try {
        await send(text);
      } catch (err) {
        options.showFailure(status, err);
      } finally {
        sending = false;
        submitButton.disabled = false;
      }
    }

    // --- open, close, scope ----------------------------------------------------------------

    function open() {
      if (!panel.hidden) {
        input("name").focus();
        return;
      }
      options.onOpen();
      panel.hidden = false;
      map.getContainer().classList.add("picking");
      showAllPoints();
      input("name").focus();
    }

    // Close the panel; after a creation the form is emptied for the next anchor.
    function close(created) {
      panel.hidden = true;
      map.getContainer().classList.remove("picking");
      Object.keys(points).forEach(function (target) { points[target].remove(); });
      pickTarget = "pin";
      pickStatus.textContent = "";
      if (created) {
        form.reset();
        input("coord_sys").value = D.config.coord_sys;
        clearErrors();
        status.textContent = "";
      }
      options.onClose();
    }

    function fillSelect(select, items) {
      while (select.options.length > 1) {
        select.remove(1);
      }
      items.forEach(function (item) {
        const option = el("option", null, item.label);
        option.value = item.value;
        select.appendChild(option);
      });
    }

    // Offer the caller's districts and development zones; the API checks the point's scope.
    function setScope(me) {
      fillSelect(input("district_code"), (me.districts || []).map(function (district) {
        return { value: district.code, label: district.name || district.code };
      }));
      // The zone data has Chinese names only, so the English page shows them too.
      fillSelect(input("zone_key"), (me.zones || []).map(function (zone) {
        return { value: zone.key, label: zone.name || zone.key };
      }));
      input("zone_key").closest(".form-row").hidden = !(me.zones || []).length;
    }

    input("coord_sys").value = D.config.coord_sys;
    form.addEventListener("submit", submit);
    byId("create-cancel").addEventListener("click", function () { close(false); });
    form.querySelectorAll(".pick-button").forEach(function (button) {
      button.addEventListener("click", function () { startPick(button.dataset.target); });
    });
    ["entrance_lon", "entrance_lat", "shuttle_lon", "shuttle_lat", "coord_sys"]
      .forEach(function (name) { input(name).addEventListener("change", showAllPoints); });
    ["lon", "lat"].forEach(function (name) {
      input(name).addEventListener("change", function () {
        showAllPoints();
        revealPin();
      });
    });
    map.on("click", onMapClick);

    return { open: open, close: close, setScope: setScope, isOpen: function () { return !panel.hidden; } };
  }

  return { setup: setup };
})();
