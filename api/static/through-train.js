// The community through-train page: employers reachable from a community by mode and route.
// API text (names, titles, itineraries) is placed with textContent only (see map-base.js).
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  // Employers listed per mode: a notice board shows the nearest few dozen, not every site.
  const NOTICE_LIMIT = 40;
  const MODE_COLORS = { walk: "#1a9641", bike: "#2b83ba", transit: "#d7191c", drive: "#7b3294" };

  const form = document.getElementById("tt-form");
  const status = document.getElementById("tt-status");
  const printButton = document.getElementById("tt-print");
  const map = D.createMap("map");
  const results = L.layerGroup().addTo(map);

  function selectedModes() {
    return Array.from(form.querySelectorAll("input[name=mode]:checked")).map(function (box) {
      return box.value;
    });
  }

  function placeText(place) {
    const values = {
      community: place.community_name || "",
      street: place.street_name || "",
      district: place.district_name || "",
    };
    return D.format(t["tt_place_" + place.placed_by] || t.tt_place_point, values);
  }

  function employerItem(employer) {
    const item = D.el("li", "tt-employer");
    const line = D.format(t.tt_employer_line, {
      name: employer.name,
      minutes: Math.max(1, Math.round(employer.minutes)),
      postings: employer.n_postings,
    });
    item.appendChild(D.el("strong", null, line));
    item.appendChild(D.el("div", "tt-route", employer.text));
    if (employer.titles.length > 0) {
      item.appendChild(D.el("div", "tt-titles", employer.titles.join("、")));
    }
    return item;
  }

  function addMarker(employer, mode) {
    const marker = L.circleMarker([employer.lat, employer.lon], {
      radius: 6,
      color: MODE_COLORS[mode] || "#555",
      fillOpacity: 0.7,
    });
    marker.bindPopup(D.popupElement(employer.name, [["", employer.text]]));
    marker.addTo(results);
  }

  function render(body) {
    const notice = document.getElementById("tt-modes");
    notice.replaceChildren();
    results.clearLayers();
    document.getElementById("tt-notice-title").textContent = t.tt_title;
    document.getElementById("tt-place").textContent = placeText(body.place);
    const origin = L.marker([body.place.lat, body.place.lon], { title: body.place.community_name || "" });
    origin.addTo(results);

    body.modes.forEach(function (reach) {
      const section = D.el("section", "tt-mode");
      section.dataset.mode = reach.mode;
      const summary = D.format(t.tt_mode_summary, {
        mode: t["tt_mode_" + reach.mode] || reach.mode,
        minutes: body.minutes,
        employers: D.formatCount(reach.n_employers),
        postings: D.formatCount(reach.n_postings),
      });
      section.appendChild(D.el("h3", null, summary));
      if (reach.n_employers === 0) {
        section.appendChild(D.el("p", null, t.tt_none));
      }
      let shown = 0;
      reach.groups.forEach(function (group) {
        const count = group.employers.length;
        const heading = D.config.lang === "en" ? group.label + " (" + count + ")" : group.label + "（" + count + "）";
        section.appendChild(D.el("h4", "tt-group", heading));
        const list = D.el("ul", "tt-employers");
        group.employers.forEach(function (employer) {
          list.appendChild(employerItem(employer));
          addMarker(employer, reach.mode);
          shown += 1;
        });
        section.appendChild(list);
      });
      if (reach.truncated) {
        section.appendChild(D.el("p", "tt-truncated", D.format(t.tt_truncated, { shown: shown })));
      }
      notice.appendChild(section);
    });
    const layers = results.getLayers();
    if (layers.length > 0) {
      map.fitBounds(L.featureGroup(layers).getBounds().pad(0.1), { animate: false });
    }
  }

  // The language link reloads the page, so it must carry the community searched for.
  function keepCommunityOnLanguageSwitch(community) {
    const link = document.getElementById("lang-switch");
    const target = new URL(link.href, window.location.href);
    target.searchParams.set("community", community);
    link.href = target.pathname + target.search;
  }

  async function search() {
    const community = document.getElementById("tt-community").value.trim();
    const params = {
      community: community,
      minutes: document.getElementById("tt-minutes").value,
      modes: selectedModes().join(";") || "walk",
      limit: NOTICE_LIMIT,
    };
    status.classList.remove("error");
    status.textContent = t.loading;
    try {
      render(await D.fetchJson(D.apiUrl("/v1/through-train", params)));
      status.textContent = "";
      printButton.disabled = false;
      const url = new URL(window.location.href);
      url.searchParams.set("community", community);
      window.history.replaceState(null, "", url.pathname + url.search);
      keepCommunityOnLanguageSwitch(community);
    } catch (err) {
      D.showError(status, err);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    search();
  });
  printButton.addEventListener("click", function () {
    window.print();
  });

  const initial = new URLSearchParams(window.location.search).get("community");
  if (initial) {
    document.getElementById("tt-community").value = initial;
    search();
  }
})();
