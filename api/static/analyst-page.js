// The analyst dashboard: coverage and accessibility figures by district, and the gap map.
// Figures come from /v1/analyst/ routes with the signed-in analyst's token (staff-session.js).
// Names from the data are placed with textContent only (see map-base.js).
"use strict";

(function () {
  const D = window.Doorstep;
  const Session = window.DoorstepStaffSession;
  const t = D.messages;
  const status = document.getElementById("an-status");
  // Streets listed in the table: the lowest shares, where new stations would help most.
  const STREETS_SHOWN = 20;
  const COLORS = { gap: "#d7301f", covered: "#31a354", station: "#2b8cbe" };

  class SessionExpired extends Error {}

  // GET a dashboard route with the session token; a 401 opens the login page.
  async function analystJson(path) {
    if (!Session.token()) {
      window.location.replace(Session.loginUrl(D.config.lang, null, "/analyst"));
      throw new SessionExpired(t.an_login_needed);
    }
    const headers = Object.assign({ Accept: "application/json" }, Session.authHeaders());
    const response = await fetch(D.apiUrl(path), { headers: headers });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.status === 401) {
      Session.clearToken();
      window.location.replace(Session.loginUrl(D.config.lang, "expired", "/analyst"));
      throw new SessionExpired(t.an_login_needed);
    }
    if (!response.ok) {
      throw new Error(D.errorText(response.status, body));
    }
    return body;
  }

  function percent(value) {
    if (value === null || value === undefined) {
      return "–";
    }
    return (value * 100).toFixed(1) + "%";
  }

  function number(value, digits) {
    if (value === null || value === undefined) {
      return "–";
    }
    return Number(value).toLocaleString(D.config.lang === "en" ? "en" : "zh-CN", {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    });
  }

  // A table from column headings and rows of cells; a cell is text or a DOM node.
  function table(headings, rows, className) {
    const element = D.el("table", "an-table " + (className || ""));
    const head = D.el("tr");
    headings.forEach(function (heading) {
      head.appendChild(D.el("th", null, heading));
    });
    element.appendChild(D.el("thead")).appendChild(head);
    const body = element.appendChild(D.el("tbody"));
    rows.forEach(function (row) {
      const line = D.el("tr", row.className || null);
      row.cells.forEach(function (cell) {
        const td = D.el("td");
        if (cell instanceof Node) {
          td.appendChild(cell);
        } else {
          td.textContent = cell;
        }
        line.appendChild(td);
      });
      body.appendChild(line);
    });
    return element;
  }

  function shareCell(share) {
    const cell = D.el("span", null, percent(share));
    const meter = D.el("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = share || 0;
    cell.appendChild(meter);
    return cell;
  }

  function shareRows(records) {
    return records.map(function (record) {
      return {
        cells: [
          record.name || record.code,
          number(record.places, 0),
          number(record.covered, 0),
          shareCell(record.share),
          number(record.median_minutes, 0),
        ],
      };
    });
  }

  function renderCircle(circle) {
    const headings = [t.an_col_name, t.an_col_places, t.an_col_covered, t.an_col_share, t.an_col_median];
    document.getElementById("an-circle-summary").textContent = D.format(t.an_circle_summary, {
      covered: number(circle.covered, 0),
      places: number(circle.places, 0),
      share: percent(circle.share),
      minutes: circle.threshold_min,
      stations: circle.stations,
    });
    const districts = document.getElementById("an-circle-districts");
    districts.replaceChildren(table(headings, shareRows(circle.districts), "an-districts"));
    const streets = document.getElementById("an-circle-streets");
    const shown = circle.streets.slice(0, STREETS_SHOWN);
    streets.replaceChildren(
      table(headings, shareRows(shown), "an-streets"),
      D.el("p", "an-note", D.format(t.an_streets_note, { shown: shown.length, total: circle.streets.length }))
    );
    document.getElementById("an-circle").hidden = false;
  }

  function regionName(record) {
    return record.code === "all" ? t.an_city : record.name || record.code;
  }

  function renderAccess(access) {
    document.getElementById("an-access-summary").textContent = D.format(t.an_access_summary, {
      used: number(access.postings_used, 0),
      cells: number(access.job_cells, 0),
      skipped: number(access.postings_skipped, 0),
    });
    const headings = [t.an_col_name, t.an_col_seekers].concat(
      access.catchments_min.map(function (minutes) {
        return D.format(t.an_col_jobs, { minutes: minutes });
      })
    );
    const rows = access.districts.map(function (record) {
      const cells = [regionName(record), number(record.seekers, 0)];
      access.catchments_min.forEach(function (minutes) {
        cells.push(number(record["jobs_" + minutes], 1));
      });
      return { cells: cells, className: record.code === "all" ? "an-city" : null };
    });
    document.getElementById("an-access-districts").replaceChildren(table(headings, rows, "an-access"));
    document.getElementById("an-access").hidden = false;
  }

  function renderScores(scores) {
    const select = document.getElementById("an-catchment");
    const catchments = Object.keys(scores);
    select.replaceChildren();
    catchments.forEach(function (minutes) {
      const option = D.el("option", null, minutes);
      option.value = minutes;
      select.appendChild(option);
    });
    select.value = catchments[catchments.length - 1];

    // One row per district and the city, one column per seeker group: score (seekers).
    function draw() {
      const records = scores[select.value];
      const groups = [];
      const rows = [];
      const byCode = {};
      records.forEach(function (record) {
        if (groups.indexOf(record.group) === -1) {
          groups.push(record.group);
        }
        if (!byCode[record.district_code]) {
          byCode[record.district_code] = { record: record, scores: {} };
          rows.push(byCode[record.district_code]);
        }
        byCode[record.district_code].scores[record.group] = record;
      });
      const headings = [t.an_col_name].concat(
        groups.map(function (group) {
          return (t.group_labels && t.group_labels[group]) || group;
        })
      );
      const lines = rows.map(function (row) {
        const code = row.record.district_code;
        const cells = [regionName({ code: code, name: row.record.name })];
        groups.forEach(function (group) {
          const found = row.scores[group];
          cells.push(found ? number(found.score, 3) + " (" + number(found.seekers, 0) + ")" : "–");
        });
        return { cells: cells, className: code === "all" ? "an-city" : null };
      });
      document.getElementById("an-scores-table").replaceChildren(
        table(headings, lines, "an-group-scores"),
        D.el("p", "an-note", t.an_scores_note)
      );
    }
    select.addEventListener("change", draw);
    draw();
    document.getElementById("an-scores").hidden = false;
  }

  async function renderGapMap(minutes) {
    document.getElementById("an-map-section").hidden = false;
    const map = D.createMap("map");
    const gaps = await analystJson("/v1/analyst/coverage/gaps");
    const layers = { gap: L.featureGroup(), covered: L.featureGroup(), station: L.featureGroup() };
    L.geoJSON(gaps, {
      pointToLayer: function (feature, latlng) {
        const props = feature.properties;
        let key = props.covered ? "covered" : "gap";
        if (props.kind === "station") {
          key = "station";
        }
        const marker = L.circleMarker(latlng, {
          radius: key === "station" ? 6 : 3,
          color: COLORS[key],
          weight: 1,
          fillOpacity: 0.7,
          className: "an-marker-" + key,
        });
        const text = key === "station" ? props.name : D.format(t.an_map_place_tooltip, {
          name: props.name,
          minutes: props.minutes === null ? "–" : Math.round(props.minutes),
        });
        marker.bindTooltip(D.el("span", null, text));
        marker.addTo(layers[key]);
        return marker;
      },
    });

    layers.gap.addTo(map);
    layers.station.addTo(map);
    const overlays = {};
    overlays[D.format(t.an_map_layer_gaps, { minutes: minutes })] = layers.gap;
    overlays[D.format(t.an_map_layer_covered, { minutes: minutes })] = layers.covered;
    overlays[t.an_map_layer_stations] = layers.station;
    // Layer names are our own message texts, never data, so Leaflet may treat them as HTML.
    L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    const bounds = L.featureGroup([layers.gap, layers.covered, layers.station]).getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds.pad(0.05), { animate: false });
    }
    D.addDistricts(map, status, function () { return false; });
  }

  function completionRows(records) {
    return records.map(function (record) {
      return {
        cells: [
          record.key,
          number(record.targets, 0),
          number(record.completed, 0),
          shareCell(record.rate),
        ],
      };
    });
  }

  // 131 completion rates: one table by district and one by station (the officer's organisation).
  function renderCompletion(body) {
    const headings = [t.an_col_org, t.an_col_targets, t.an_col_completed, t.an_col_rate];
    const section = D.el("div");
    section.appendChild(D.el("h3", null, t.an_completion_districts));
    section.appendChild(table(headings, completionRows(body.by_district), "an-completion-districts"));
    section.appendChild(D.el("h3", null, t.an_completion_stations));
    section.appendChild(table(headings, completionRows(body.by_station), "an-completion-stations"));
    if (body.by_district.length === 0) {
      section.appendChild(D.el("p", "an-note", t.an_completion_empty));
    }
    return section;
  }

  // The fairness audit: the no-drop check and exposure by seeker group (simulated seekers).
  function renderFairness(body) {
    const section = D.el("div");
    const check = body.no_drop;
    section.appendChild(
      D.el(
        "p",
        "an-fairness-summary",
        D.format(t.an_fairness_summary, {
          pairs: number(check.pairs, 0),
          dropped: number(check.dropped_pairs, 0),
          seekers: number(check.seekers, 0),
        })
      )
    );
    const headings = [t.an_col_group, t.an_col_seekers, t.an_col_exposure, t.an_col_small_share, t.an_col_commute];
    const rows = body.by_group.map(function (record) {
      return {
        cells: [
          t.group_labels[record.group] || record.group,
          number(record.seekers, 0),
          number(record.exposure_per_seeker, 2),
          percent(record.small_employer_share),
          number(record.mean_commute_min, 1),
        ],
      };
    });
    section.appendChild(table(headings, rows, "an-fairness-groups"));
    section.appendChild(D.el("p", "an-note", t.an_fairness_note));
    return section;
  }

  // Figures beyond coverage, each from its own JSON route. To add one, append
  // {id, title, path, render}, where render(body) returns the section's content as a DOM
  // node. A figure whose route fails or is not deployed (no fairness report yet, say) is
  // left out and named in the status line.
  const FIGURES = [
    { id: "completion", path: "/v1/analytics/assistance/completion", title: t.an_completion_title, render: renderCompletion },
    { id: "fairness", path: "/v1/analytics/fairness", title: t.an_fairness_title, render: renderFairness },
  ];

  async function renderMoreFigures() {
    const container = document.getElementById("an-more");
    const failed = [];
    for (const figure of FIGURES) {
      try {
        const body = await analystJson(figure.path);
        const section = D.el("section", "an-figure");
        section.id = "an-figure-" + figure.id;
        section.appendChild(D.el("h2", null, figure.title));
        section.appendChild(figure.render(body));
        container.appendChild(section);
      } catch (err) {
        if (err instanceof SessionExpired) {
          throw err;
        }
        failed.push(figure.title + ": " + err.message);
      }
    }
    return failed;
  }

  async function load() {
    try {
      const figures = await analystJson("/v1/analyst/coverage");
      document.getElementById("an-generated").textContent = D.format(t.an_generated, {
        time: new Date(figures.generated_at).toLocaleString(D.config.lang === "en" ? "en" : "zh-CN"),
      });
      document.getElementById("an-simulated").hidden = !figures.simulated_seekers;
      renderCircle(figures.circle);
      renderAccess(figures.access);
      renderScores(figures.scores);
      await renderGapMap(figures.circle.threshold_min);
      const failed = await renderMoreFigures();
      status.textContent = failed.join("; ");
      status.classList.toggle("error", failed.length > 0);
    } catch (err) {
      if (err instanceof SessionExpired) {
        status.textContent = err.message;
        return;
      }
      D.showError(status, err);
    }
  }

  load();
})();
