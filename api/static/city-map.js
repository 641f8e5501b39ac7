// City map (城市地图): districts, clustered employer anchors coloured by location
// precision, HR map layers in the layer switcher, a legend and a counts panel.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const statusElement = document.getElementById("stats-status");

  // Point colours of the HR layers; metro lines use each feature's own colour.
  const LAYER_COLORS = {
    hr_offices: "#c51b7d",
    street_offices: "#6a3d9a",
    training: "#e08214",
    universities: "#01665e",
    parks: "#8c510a",
    metro_lines: "#2166ac",
    metro_stations: "#2166ac",
  };

  const map = D.createMap("map");

  function anchorPopup(props) {
    const label = D.precisionLabel(props.precision, props.precision_label);
    return D.popupElement(props.name, [
      [t.popup_precision, D.precisionText(label, props.approximate)],
      [t.popup_postings, props.n_postings],
      [t.popup_district, props.district_name],
    ]);
  }

  function anchorMarker(feature, latlng) {
    const color = D.PRECISION_COLORS[feature.properties.precision] || "#777";
    const marker = L.circleMarker(latlng, {
      className: "anchor-marker",
      radius: 6,
      color: "#fff",
      weight: 1,
      fillColor: color,
      fillOpacity: 0.9,
    });
    marker.bindPopup(anchorPopup(feature.properties));
    return marker;
  }

  // Anchors in the view padded by half its size on each side, reloaded when a pan
  // leaves the loaded area or the zoom changes. Small pans (such as a popup panning into
  // view) keep the markers, so an open popup stays open. A newer request cancels the
  // one still running.
  const anchors = L.markerClusterGroup({ chunkedLoading: true, maxClusterRadius: 50 });
  anchors.addTo(map);
  let anchorRequest = null;
  let loaded = null; // {bounds, zoom} of the markers on the map

  async function loadAnchors() {
    const view = map.getBounds();
    if (loaded && loaded.zoom === map.getZoom() && loaded.bounds.contains(view)) {
      return;
    }
    if (anchorRequest) {
      anchorRequest.abort();
    }
    anchorRequest = new AbortController();
    const bounds = view.pad(0.5);
    const url = D.apiUrl("/v1/anchors", { bbox: bounds.toBBoxString() });
    try {
      const collection = await D.fetchJson(url, { signal: anchorRequest.signal });
      anchors.clearLayers();
      anchors.addLayer(L.geoJSON(collection, { pointToLayer: anchorMarker }));
      loaded = { bounds: bounds, zoom: map.getZoom() };
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  function layerTitle(item) {
    const server = D.config.lang === "en" ? item.title_en : item.title_zh;
    return server || t.layer_titles[item.name] || item.name;
  }

  function featurePopup(feature, title) {
    const props = feature.properties || {};
    return D.popupElement(props.name || title, [
      [t.popup_layer, title],
      [t.popup_kind, props.kind],
    ]);
  }

  // An overlay is fetched the first time it is switched on.
  function lazyOverlay(item) {
    const title = layerTitle(item);
    const fallback = LAYER_COLORS[item.name] || "#444";
    const className = "layer-" + item.name.replace(/[^a-z0-9_-]/gi, "");
    const group = L.layerGroup();
    let loaded = false;

    group.on("add", async function () {
      if (loaded) {
        return;
      }
      loaded = true;
      try {
        const collection = await D.fetchJson(D.apiUrl("/v1/layers/" + encodeURIComponent(item.name)));
        group.addLayer(
          L.geoJSON(collection, {
            style: function (feature) {
              const color = D.safeColor(feature.properties && feature.properties.color, fallback);
              return { className: className, color: color, weight: 3, opacity: 0.85, fillOpacity: 0.15 };
            },
            pointToLayer: function (feature, latlng) {
              return L.circleMarker(latlng, {
                className: className,
                radius: 5,
                color: "#fff",
                weight: 1,
                fillColor: D.safeColor(feature.properties && feature.properties.color, fallback),
                fillOpacity: 0.95,
              });
            },
            onEachFeature: function (feature, layer) {
              layer.bindPopup(featurePopup(feature, title));
            },
          })
        );
      } catch (err) {
        loaded = false;
        D.showError(statusElement, err);
      }
    });
    return { title: title, layer: group };
  }

  async function addLayerSwitcher(districts) {
    const overlays = {};
    overlays[D.escapeHtml(t.layer_districts)] = districts;
    overlays[D.escapeHtml(t.layer_anchors)] = anchors;
    const control = L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    try {
      const listing = await D.fetchJson(D.apiUrl("/v1/layers"));
      listing.items
        .filter(function (item) {
          return item.name !== "districts";
        })
        .forEach(function (item) {
          const overlay = lazyOverlay(item);
          // Leaflet puts overlay names into the switcher as HTML.
          control.addOverlay(overlay.layer, D.escapeHtml(overlay.title));
        });
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  function fillLegend() {
    const list = document.getElementById("legend-items");
    D.PRECISION_ORDER.forEach(function (precision) {
      const item = D.el("li", "legend-item");
      const swatch = D.el("span", "swatch");
      swatch.style.backgroundColor = D.PRECISION_COLORS[precision];
      item.appendChild(swatch);
      item.appendChild(D.el("span", null, t.precision_labels[precision]));
      list.appendChild(item);
    });
  }

  function statRow(list, label, value, badge) {
    const term = D.el("dt", null, label);
    if (badge) {
      term.appendChild(D.el("span", "badge", badge));
    }
    list.appendChild(term);
    list.appendChild(D.el("dd", null, Number(value).toLocaleString(D.config.lang === "en" ? "en" : "zh-CN")));
  }

  async function loadStats() {
    const list = document.getElementById("stats-items");
    try {
      const stats = await D.fetchJson("/v1/stats");
      const byPrecision = stats.anchors_by_precision || {};
      D.PRECISION_ORDER.forEach(function (precision) {
        if (precision in byPrecision) {
          statRow(list, t.stats_anchors + " · " + t.precision_labels[precision], byPrecision[precision]);
        }
      });
      statRow(list, t.stats_postings, stats.postings);
      statRow(list, t.stats_seekers, stats.seekers, stats.simulated_seekers ? t.simulated_badge : null);
      statusElement.textContent = "";
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  async function start() {
    fillLegend();
    const districts = await D.addDistricts(map, statusElement);
    await addLayerSwitcher(districts);
    map.on("moveend", loadAnchors);
    await Promise.all([loadAnchors(), loadStats()]);
  }

  start();
})();
