// Map and DOM building blocks shared by the city map and the seeker page.
//
// Safety rule for every script in this folder: text from the API (job titles, company
// and anchor names, reasons) is placed with textContent or passed to Leaflet as an
// HTMLElement, never as an HTML string, so markup in scraped data is shown, not run.
"use strict";

window.Doorstep = (function () {
  // Page data rendered by Jinja's |tojson into non-executed JSON blocks.
  function readJsonBlock(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  const messages = readJsonBlock("messages");
  const config = readJsonBlock("page-config");

  // Xi'an city centre (Bell Tower), WGS84; the offset to GCJ-02 or BD-09 is under 1 km,
  // which does not matter for the first view before the districts are fitted.
  const XIAN_CENTRE = [34.2610, 108.9423];

  const PRECISION_ORDER = ["exact", "poi", "building", "business_area", "zone", "district", "city"];
  // Anchors and jobs known only as "Xi'an" have no meaningful point, so no map draws them.
  const CITY = "city";
  const PRECISION_COLORS = {
    exact: "#1a9641",
    poi: "#4daf4a",
    building: "#2b83ba",
    business_area: "#fdae61",
    zone: "#f46d43",
    district: "#d7191c",
    city: "#7b3294",
  };

  // Replace {name} placeholders in a message; the result is only ever used as text.
  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
  }

  // Create an element, optionally with a class and text content.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  // Leaflet's layer switcher and attribution take HTML strings, so text passed there is
  // escaped first.
  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  // Accept only #rgb / #rrggbb colours from layer properties; anything else gets the fallback.
  function safeColor(value, fallback) {
    return typeof value === "string" && /^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(value)
      ? value
      : fallback;
  }

  // The precision labels already mark an estimated location (区县级估计), so no extra 约
  // is added to them.
  function precisionLabel(precision, serverLabel) {
    return serverLabel || messages.precision_labels[precision] || precision;
  }

  // 约x公里 for a known distance, 位置仅知在西安 for a city-level location, else null.
  // An approximate location (an area) gets whole km, at least 1, like the reasons.
  function distanceText(distanceM, precision, approximate) {
    if (typeof distanceM === "number") {
      const km = approximate
        ? String(Math.max(1, Math.round(distanceM / 1000)))
        : (distanceM / 1000).toFixed(1);
      return format(messages.distance_km, { km: km });
    }
    return precision === CITY ? messages.distance_unknown : null;
  }

  // The location label, then the district only when the label does not already name it.
  function placeText(locationLabel, districtName) {
    const parts = [];
    if (locationLabel) {
      parts.push(locationLabel);
    }
    if (districtName && !(locationLabel && locationLabel.indexOf(districtName) !== -1)) {
      parts.push(districtName);
    }
    return parts.join(" · ");
  }

  function formatCount(value) {
    return Number(value).toLocaleString(config.lang === "en" ? "en" : "zh-CN");
  }

  // Build a same-origin API URL. Every request carries the basemap's coordinate system
  // and the page language.
  function apiUrl(path, params) {
    const url = new URL(path, window.location.origin);
    const all = Object.assign({ coord_sys: config.coord_sys, lang: config.lang }, params || {});
    Object.keys(all).forEach(function (key) {
      if (all[key] !== null && all[key] !== undefined) {
        url.searchParams.set(key, String(all[key]));
      }
    });
    return url.pathname + url.search;
  }

  // Turn the API's error bodies ({"detail": [...]}, {"detail": "..."} or
  // {"error": {"field", "message"}}) into one line of text.
  function errorText(status, body) {
    if (body && body.error && body.error.message) {
      return body.error.field ? body.error.field + ": " + body.error.message : body.error.message;
    }
    if (body && Array.isArray(body.detail)) {
      return body.detail
        .map(function (item) {
          // loc is ["query", "radius_m"] for a parameter, ["path"] for a missing record.
          const field = Array.isArray(item.loc) && item.loc.length > 1 ? item.loc[item.loc.length - 1] : "";
          const text = config.lang === "zh" && item.msg_zh ? item.msg_zh : item.msg;
          return field ? field + ": " + text : text;
        })
        .join("; ");
    }
    if (body && typeof body.detail === "string") {
      return body.detail;
    }
    return "HTTP " + status;
  }

  async function fetchJson(url, options) {
    const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options));
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      throw new Error(errorText(response.status, body));
    }
    return body;
  }

  function showError(statusElement, err) {
    if (err && err.name === "AbortError") {
      return;
    }
    statusElement.textContent = messages.request_failed + ": " + (err && err.message ? err.message : err);
    statusElement.classList.add("error");
  }

  // A popup body: a heading and label/value rows, all as text nodes.
  function popupElement(title, rows) {
    const box = el("div", "popup");
    box.appendChild(el("strong", "popup-title", title));
    const list = el("dl", "popup-rows");
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") {
        return;
      }
      if (row[0]) {
        list.appendChild(el("dt", null, row[0]));
      }
      list.appendChild(el("dd", row[0] ? null : "plain", row[1]));
    });
    box.appendChild(list);
    return box;
  }

  // Create the map; a tile layer is added only when the server has a tile URL.
  function createMap(elementId) {
    // SVG markers (not canvas) so every marker is an element that tests and screen
    // readers can reach; clustering keeps their number small.
    // maxZoom is set on the map because without a tile layer nothing else sets it, and
    // leaflet.markercluster needs it.
    const map = L.map(elementId, { center: XIAN_CENTRE, zoom: 10, minZoom: 7, maxZoom: 18 });
    // The default prefix links to an outside site; the pages link to nothing outside.
    map.attributionControl.setPrefix("Leaflet");
    if (config.tile_url) {
      L.tileLayer(config.tile_url, {
        attribution: escapeHtml(config.tile_attribution || ""),
        subdomains: config.tile_subdomains || "abc",
        maxZoom: 18,
      }).addTo(map);
    }
    return map;
  }

  // Draw the district polygons and return their layer. The view is fitted to them unless
  // shouldFit() returns false when they arrive, because the seeker page may already show
  // its results by then.
  async function addDistricts(map, statusElement, shouldFit) {
    const layer = L.geoJSON(null, {
      style: { color: "#555", weight: 1.5, fillColor: "#d9e4ec", fillOpacity: 0.35 },
      onEachFeature: function (feature, featureLayer) {
        const name = feature.properties && feature.properties.name;
        if (name) {
          featureLayer.bindTooltip(el("span", null, name), { sticky: true });
        }
      },
    }).addTo(map);
    try {
      layer.addData(await fetchJson(apiUrl("/v1/layers/districts")));
      if (layer.getLayers().length > 0 && (!shouldFit || shouldFit())) {
        // Not animated: Leaflet 1.9 ignores a setView or fitBounds made while a zoom
        // animation runs, which would drop the seeker page's zoom to its results.
        map.fitBounds(layer.getBounds(), { animate: false });
      }
    } catch (err) {
      showError(statusElement, err);
    }
    return layer;
  }

  return {
    messages: messages,
    config: config,
    PRECISION_ORDER: PRECISION_ORDER,
    PRECISION_COLORS: PRECISION_COLORS,
    CITY: CITY,
    format: format,
    el: el,
    escapeHtml: escapeHtml,
    safeColor: safeColor,
    precisionLabel: precisionLabel,
    distanceText: distanceText,
    placeText: placeText,
    formatCount: formatCount,
    apiUrl: apiUrl,
    errorText: errorText,
    fetchJson: fetchJson,
    showError: showError,
    popupElement: popupElement,
    createMap: createMap,
    addDistricts: addDistricts,
  };
})();
