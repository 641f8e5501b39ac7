// City map (城市地图): districts, clustered employer anchors coloured by location
// precision and ringed when staff flagged them as key or above-scale industrial
// enterprises, HR map layers in the layer switcher, a legend and a counts panel.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const statusElement = document.getElementById("stats-status");
  const clusteredNote = document.getElementById("clustered-note");

  // HR layers are drawn with symbols of their own (squares, a diamond, a triangle, rings)
  // whose colours differ from the precision colours, so a symbol is never read as an
  // anchor. pages.css defines one class per layer, used by the map icons and the legend.
  const POINT_SYMBOL_CLASSES = {
    hr_offices: "symbol-hr_offices",
    street_offices: "symbol-street_offices",
    training: "symbol-training",
    universities: "symbol-universities",
    parks: "symbol-parks",
    metro_stations: "symbol-metro_stations",
  };
  const OTHER_SYMBOL_CLASS = "symbol-other";
  const LINE_FALLBACK_COLOR = "#555555";

  // Flagged anchors keep their precision fill and get a dark ring: solid for a key
  // enterprise (重点企业), dashed for an above-scale industrial firm (规上工业企业) that is
  // not also a key enterprise. pages.css draws the same rings in the legend.
  const FLAG_RING_COLOR = "#1b1b1b";
  // Butt caps keep the gaps of the dashed ring open; round caps would close them.
  const FLAG_RINGS = {
    key: { className: "anchor-marker anchor-key", dashArray: null, lineCap: "round" },
    above_scale: { className: "anchor-marker anchor-above-scale", dashArray: "3 3", lineCap: "butt" },
  };

  const map = D.createMap("map");

  function enterpriseFlag(props) {
    if (props.key_enterprise === true) {
      return "key";
    }
    return props.above_scale_industrial === true ? "above_scale" : null;
  }

  function enterpriseLabels(props) {
    const labels = [];
    if (props.key_enterprise === true) {
      labels.push(t.enterprise_key);
    }
    if (props.above_scale_industrial === true) {
      labels.push(t.enterprise_above_scale);
    }
    return labels.join(t.list_separator);
  }

  function anchorPopup(props) {
    return D.popupElement(props.name, [
      [t.popup_precision, D.precisionLabel(props.precision, props.precision_label)],
      [t.popup_postings, props.n_postings],
      [t.popup_district, props.district_name],
      [t.popup_enterprise, enterpriseLabels(props)],
    ]);
  }

  function anchorMarker(feature, latlng) {
    const props = feature.properties;
    const color = D.PRECISION_COLORS[props.precision] || "#777";
    const ring = FLAG_RINGS[enterpriseFlag(props)];
    const marker = L.circleMarker(latlng, {
      className: ring ? ring.className : "anchor-marker",
      radius: ring ? 8 : 6,
      color: ring ? FLAG_RING_COLOR : "#fff",
      weight: ring ? 3 : 1,
      dashArray: ring ? ring.dashArray : null,
      lineCap: ring ? ring.lineCap : "round",
      fillColor: color,
      fillOpacity: 0.9,
      keyCount: props.key_enterprise === true ? 1 : 0,
    });
    marker.bindPopup(anchorPopup(props));
    return marker;
  }

  // City-level anchors all sit on one made-up point at the Bell Tower; the counts panel
  // reports them instead. The API leaves them out by default; this filter also drops any
  // that an older server still sends.
  function isMappedAnchor(feature) {
    return !(feature.properties && feature.properties.precision === D.CITY);
  }

  // A neutral cluster icon, so that cluster colours are not read as precision colours.
  // The count is a number placed with textContent. When the anchors include key
  // enterprises, a corner badge gives their number.
  function countIcon(count, keyCount) {
    let size = 44;
    if (count < 100) {
      size = 32;
    } else if (count < 1000) {
      size = 38;
    }
    const icon = D.el("span", "anchor-cluster-body");
    icon.appendChild(D.el("span", "anchor-cluster-count", D.formatCount(count)));
    if (keyCount > 0) {
      icon.appendChild(D.el("span", "anchor-cluster-key", D.formatCount(keyCount)));
    }
    return L.divIcon({
      html: icon,
      className: "marker-cluster anchor-cluster",
      iconSize: L.point(size, size),
    });
  }

  // A client cluster shows the number of anchors, so a server cluster among its markers
  // adds the count of anchors it contains, and its count of key enterprises.
  function clusterIcon(cluster) {
    let count = 0;
    let keyCount = 0;
    cluster.getAllChildMarkers().forEach(function (marker) {
      count += marker.options.anchorCount || 1;
      keyCount += marker.options.keyCount || 0;
    });
    return countIcon(count, keyCount);
  }

  function serverClusterTitle(props) {
    const title = D.format(t.cluster_title, { n: D.formatCount(props.count) });
    const flags = D.format(t.cluster_flags, {
      key: D.formatCount(props.n_key_enterprise || 0),
      above: D.formatCount(props.n_above_scale_industrial || 0),
    });
    return title + t.list_separator + flags;
  }

  // Marker of a server cluster, sent when too many anchors are in view. A click zooms
  // to the extent of its anchors.
  function serverCluster(feature, latlng) {
    const props = feature.properties;
    const keyCount = props.n_key_enterprise || 0;
    const marker = L.marker(latlng, {
      icon: countIcon(props.count, keyCount),
      anchorCount: props.count,
      keyCount: keyCount,
      title: serverClusterTitle(props),
    });
    marker.on("click", function () {
      const box = props.bbox;
      const bounds = L.latLngBounds([box[1], box[0]], [box[3], box[2]]);
      if (bounds.getNorthEast().equals(bounds.getSouthWest())) {
        map.setView(bounds.getCenter(), Math.min(map.getZoom() + 3, map.getMaxZoom()));
      } else {
        map.fitBounds(bounds.pad(0.2));
      }
    });
    return marker;
  }

  // Anchors in the view padded by half its size on each side, reloaded when a pan
  // leaves the loaded area or the zoom changes. Small pans (such as a popup panning into
  // view) keep the markers, so an open popup stays open. A newer request cancels the
  // one still running. Above the server's limit the features are clusters.
  const anchors = L.markerClusterGroup({
    chunkedLoading: true,
    maxClusterRadius: 50,
    iconCreateFunction: clusterIcon,
  });
  anchors.addTo(map);
  let anchorRequest = null;
  let loaded = null; // {bounds, zoom} of the markers on the map

  function showClustered(collection) {
    if (collection && collection.clustered === true) {
      clusteredNote.textContent = D.format(t.clustered_note, {
        n: D.formatCount(collection.total),
      });
      clusteredNote.hidden = false;
    } else {
      clusteredNote.hidden = true;
    }
  }

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
    const url = D.apiUrl("/v1/anchors", { bbox: bounds.toBBoxString(), include_city: "false" });
    try {
      const collection = await D.fetchJson(url, { signal: anchorRequest.signal });
      const clustered = collection.clustered === true;
      anchors.clearLayers();
      anchors.addLayer(L.geoJSON(collection, {
        filter: clustered ? null : isMappedAnchor,
        pointToLayer: clustered ? serverCluster : anchorMarker,
      }));
      showClustered(collection);
      loaded = { bounds: bounds, zoom: map.getZoom() };
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  function layerTitle(item) {
    const server = D.config.lang === "en" ? item.title_en : item.title_zh;
    return server || t.layer_titles[item.name] || item.name;
  }

  function symbolClass(name) {
    return POINT_SYMBOL_CLASSES[name] || OTHER_SYMBOL_CLASS;
  }

  // Popup of an HR layer feature: its name, the layer, and the kind only when it differs
  // from the layer title (the parks layer contains both 产业园 and 孵化器).
  function featurePopup(feature, title) {
    const props = feature.properties || {};
    const kind = t.kind_labels[props.kind];
    return D.popupElement(props.name || title, [
      [t.popup_layer, title],
      [t.popup_kind, kind && kind !== title ? kind : null],
      [t.popup_address, props.address],
    ]);
  }

  function pointSymbol(name, latlng) {
    const safeName = name.replace(/[^a-z0-9_-]/gi, "");
    return L.marker(latlng, {
      icon: L.divIcon({
        html: "",
        className: "hr-symbol " + symbolClass(name) + " layer-" + safeName,
        iconSize: [12, 12],
      }),
      keyboard: false,
    });
  }

  // An overlay is fetched the first time it is switched on.
  function lazyOverlay(item) {
    const title = layerTitle(item);
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
              const color = D.safeColor(feature.properties && feature.properties.color, LINE_FALLBACK_COLOR);
              return { className: className, color: color, weight: 4, opacity: 0.9, fillOpacity: 0.15 };
            },
            pointToLayer: function (feature, latlng) {
              return pointSymbol(item.name, latlng);
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

  function legendItem(swatch, label) {
    const item = D.el("li", "legend-item");
    item.appendChild(swatch);
    item.appendChild(D.el("span", null, label));
    return item;
  }

  // The legend swatch of an HR layer: a line for line layers, else the map symbol.
  function layerSwatch(item) {
    if (item.name === "districts") {
      return D.el("span", "swatch swatch-district");
    }
    if (/line/i.test(item.geometry_type || "")) {
      return D.el("span", "swatch swatch-line");
    }
    return D.el("span", "hr-symbol " + symbolClass(item.name));
  }

  async function addLayerSwitcher(districts) {
    const overlays = {};
    overlays[D.escapeHtml(t.layer_districts)] = districts;
    overlays[D.escapeHtml(t.layer_anchors)] = anchors;
    const control = L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    const legendList = document.getElementById("legend-layer-items");
    legendList.appendChild(legendItem(D.el("span", "swatch swatch-district"), t.layer_districts));
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
          legendList.appendChild(legendItem(layerSwatch(item), overlay.title));
        });
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  function fillLegend() {
    const list = document.getElementById("legend-items");
    D.PRECISION_ORDER.forEach(function (precision) {
      if (precision === D.CITY) {
        return;
      }
      const swatch = D.el("span", "swatch");
      swatch.style.backgroundColor = D.PRECISION_COLORS[precision];
      list.appendChild(legendItem(swatch, t.precision_labels[precision]));
    });
    list.appendChild(legendItem(D.el("span", "swatch swatch-key"), t.legend_key_enterprise));
    list.appendChild(
      legendItem(D.el("span", "swatch swatch-above-scale"), t.legend_above_scale_industrial)
    );
    const cluster = D.el("span", "anchor-cluster legend-cluster");
    cluster.appendChild(D.el("span", "anchor-cluster-count", "12"));
    list.appendChild(legendItem(cluster, t.legend_cluster));
    const flagged = D.el("span", "anchor-cluster legend-cluster legend-cluster-key");
    flagged.appendChild(D.el("span", "anchor-cluster-count", "12"));
    flagged.appendChild(D.el("span", "anchor-cluster-key", "3"));
    list.appendChild(legendItem(flagged, t.legend_cluster_key));
  }

  function statRow(list, label, value, badge) {
    const term = D.el("dt", null, label);
    if (badge) {
      term.appendChild(D.el("span", "badge", badge));
    }
    list.appendChild(term);
    list.appendChild(D.el("dd", null, D.formatCount(value)));
  }

  function showCityNote(count) {
    const note = document.getElementById("city-note");
    if (typeof count === "number" && count > 0) {
      note.textContent = D.format(t.city_anchors_note, { n: D.formatCount(count) });
      note.hidden = false;
    }
  }

  async function loadStats() {
    const list = document.getElementById("stats-items");
    try {
      const stats = await D.fetchJson(D.apiUrl("/v1/stats"));
      const byPrecision = stats.anchors_by_precision || {};
      D.PRECISION_ORDER.forEach(function (precision) {
        if (precision !== D.CITY && precision in byPrecision) {
          statRow(list, t.stats_anchors + " · " + t.precision_labels[precision], byPrecision[precision]);
        }
      });
      statRow(list, t.stats_postings, stats.postings);
      statRow(list, t.stats_seekers, stats.seekers, stats.simulated_seekers ? t.simulated_badge : null);
      showCityNote(byPrecision[D.CITY]);
      statusElement.textContent = "";
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  // One popup per district: its anchors by curation state and by location precision,
  // from /v1/stats/districts, so stations see how far curation has come.
  function summaryList(title, counts, order, labels) {
    const box = D.el("div", "district-summary-part");
    box.appendChild(D.el("strong", null, title));
    const list = D.el("ul");
    order.forEach(function (key) {
      if (counts[key]) {
        list.appendChild(D.el("li", null, labels[key] + "：" + counts[key].toLocaleString()));
      }
    });
    box.appendChild(list);
    return box;
  }

  function districtPopup(name, rows) {
    const box = D.el("div", "district-summary");
    box.appendChild(D.el("h3", null, name));
    if (!rows || rows.length === 0) {
      box.appendChild(D.el("p", null, t.district_summary_none));
      return box;
    }
    const byState = {};
    const byPrecision = {};
    rows.forEach(function (row) {
      byState[row.state] = (byState[row.state] || 0) + row.n;
      byPrecision[row.precision] = (byPrecision[row.precision] || 0) + row.n;
    });
    const states = Object.keys(t.state_labels);
    box.appendChild(summaryList(t.district_summary_by_state, byState, states, t.state_labels));
    box.appendChild(
      summaryList(t.district_summary_by_precision, byPrecision, D.PRECISION_ORDER, t.precision_labels)
    );
    return box;
  }

  async function bindDistrictSummaries(districts) {
    try {
      const body = await D.fetchJson(D.apiUrl("/v1/stats/districts"));
      const rowsByCode = {};
      body.items.forEach(function (row) {
        (rowsByCode[row.district_code] = rowsByCode[row.district_code] || []).push(row);
      });
      districts.eachLayer(function (layer) {
        const props = layer.feature && layer.feature.properties;
        if (props && props.code) {
          layer.bindPopup(districtPopup(props.name, rowsByCode[props.code]));
        }
      });
    } catch (err) {
      D.showError(statusElement, err);
    }
  }

  async function start() {
    fillLegend();
    const districts = await D.addDistricts(map, statusElement);
    bindDistrictSummaries(districts);
    await addLayerSwitcher(districts);
    map.on("moveend", loadAnchors);
    await Promise.all([loadAnchors(), loadStats()]);
  }

  start();
})();
