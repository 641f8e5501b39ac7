// Seeker page (求职者页面): pick a simulated seeker or click the map, then list the
// ranked jobs with distance, precision and reasons, and show them around the home marker.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const PAGE_SIZE = 20;
  const RECOMMENDATION_LIMIT = 20;

  const seekerStatus = document.getElementById("seekers-status");
  const seekerList = document.getElementById("seeker-list");
  const jobsStatus = document.getElementById("jobs-status");
  const jobList = document.getElementById("job-list");
  const summary = document.getElementById("seeker-summary");
  const pager = document.getElementById("pager");
  const prevButton = document.getElementById("prev-page");
  const nextButton = document.getElementById("next-page");
  const radiusSelect = document.getElementById("radius");

  const map = D.createMap("map");
  const resultLayer = L.featureGroup().addTo(map);
  let nearbyQuery = null; // {lon, lat, page} of the last map click
  let request = null;

  function startRequest() {
    if (request) {
      request.abort();
    }
    request = new AbortController();
    jobsStatus.classList.remove("error");
    jobsStatus.textContent = t.loading;
    return request.signal;
  }

  function seekerLine(seeker) {
    return [seeker.group_label, seeker.education_label, seeker.occupation_wish_name]
      .filter(Boolean)
      .join(" · ");
  }

  function jobPrecision(job) {
    return D.precisionText(D.precisionLabel(job.precision, job.precision_label), job.approximate);
  }

  function jobPopup(job) {
    return D.popupElement(job.title, [
      [null, job.company],
      [null, job.salary_text || t.salary_unknown],
      [t.popup_precision, jobPrecision(job)],
      [t.popup_location, job.location_label],
    ]);
  }

  function jobCard(job, marker) {
    const item = D.el("li", "job");
    item.appendChild(D.el("h3", "job-title", job.title));
    item.appendChild(D.el("p", "job-company", job.company));

    const facts = D.el("p", "job-facts");
    facts.appendChild(D.el("span", "salary", job.salary_text || t.salary_unknown));
    facts.appendChild(D.el("span", "distance", D.distanceText(job.distance_m)));
    facts.appendChild(D.el("span", "precision", jobPrecision(job)));
    item.appendChild(facts);

    const place = [job.location_label, job.district_name].filter(Boolean).join(" · ");
    if (place) {
      item.appendChild(D.el("p", "job-place", place));
    }

    if (Array.isArray(job.reasons) && job.reasons.length > 0) {
      item.appendChild(D.el("p", "reasons-title", t.reasons_title));
      const reasons = D.el("ul", "reasons");
      job.reasons.forEach(function (reason) {
        reasons.appendChild(D.el("li", null, reason));
      });
      item.appendChild(reasons);
    }

    if (marker) {
      item.tabIndex = 0;
      item.addEventListener("click", function () {
        marker.openPopup();
      });
    }
    return item;
  }

  function jobMarker(job) {
    if (typeof job.lon !== "number" || typeof job.lat !== "number") {
      return null;
    }
    const marker = L.circleMarker([job.lat, job.lon], {
      className: "job-marker",
      radius: 7,
      color: "#fff",
      weight: 1,
      fillColor: D.PRECISION_COLORS[job.precision] || "#777",
      fillOpacity: 0.9,
    });
    marker.bindPopup(jobPopup(job));
    resultLayer.addLayer(marker);
    return marker;
  }

  function showJobs(items) {
    jobList.replaceChildren();
    items.forEach(function (job) {
      jobList.appendChild(jobCard(job, jobMarker(job)));
    });
    jobsStatus.textContent = items.length === 0 ? t.no_jobs : "";
  }

  function homeMarker(lon, lat, label) {
    const marker = L.marker([lat, lon], { icon: L.divIcon({ className: "home-icon", iconSize: [18, 18] }) });
    marker.bindPopup(D.el("strong", null, label));
    resultLayer.addLayer(marker);
  }

  function fitResults() {
    if (resultLayer.getLayers().length > 0) {
      map.fitBounds(resultLayer.getBounds(), { padding: [30, 30], maxZoom: 15 });
    }
  }

  function showSeekerSummary(seeker) {
    summary.replaceChildren();
    const heading = D.el("h3", null, t.recommendations_title);
    heading.appendChild(D.el("span", "badge", t.simulated_badge));
    summary.appendChild(heading);
    summary.appendChild(D.el("p", null, seekerLine(seeker)));
    const home = [seeker.home_label, seeker.district_name].filter(Boolean).join(" · ");
    if (home) {
      summary.appendChild(D.el("p", null, home));
    }
    if (seeker.max_commute_min) {
      summary.appendChild(D.el("p", null, D.format(t.commute_limit, { min: seeker.max_commute_min })));
    }
  }

  async function loadRecommendations(seekerId) {
    const signal = startRequest();
    nearbyQuery = null;
    pager.hidden = true;
    const url = D.apiUrl("/v1/seekers/" + encodeURIComponent(seekerId) + "/recommendations", {
      limit: RECOMMENDATION_LIMIT,
      lang: D.config.lang,
    });
    try {
      const body = await D.fetchJson(url, { signal: signal });
      resultLayer.clearLayers();
      showSeekerSummary(body.seeker);
      if (body.seeker.home) {
        homeMarker(body.seeker.home.lon, body.seeker.home.lat, t.home_marker);
      }
      showJobs(body.items);
      fitResults();
    } catch (err) {
      D.showError(jobsStatus, err);
    }
  }

  async function loadNearby() {
    const signal = startRequest();
    const query = nearbyQuery;
    const radius = Number(radiusSelect.value);
    const url = D.apiUrl("/v1/jobs/nearby", {
      lon: query.lon.toFixed(6),
      lat: query.lat.toFixed(6),
      radius_m: radius,
      page: query.page,
      page_size: PAGE_SIZE,
      lang: D.config.lang,
    });
    try {
      const body = await D.fetchJson(url, { signal: signal });
      resultLayer.clearLayers();
      summary.replaceChildren(D.el("h3", null, t.nearby_title));
      homeMarker(query.lon, query.lat, t.clicked_point);
      resultLayer.addLayer(L.circle([query.lat, query.lon], { radius: radius, weight: 1, fillOpacity: 0.05 }));
      showJobs(body.items);
      showPager(body);
    } catch (err) {
      D.showError(jobsStatus, err);
    }
  }

  function showPager(body) {
    const pages = Math.max(1, Math.ceil(body.total / body.page_size));
    pager.hidden = body.total === 0;
    prevButton.disabled = body.page <= 1;
    nextButton.disabled = body.page >= pages;
    const status = D.el("p", "page-status", D.format(t.page_status, { page: body.page, total: body.total }));
    summary.appendChild(status);
  }

  function selectSeeker(button, seekerId) {
    seekerList.querySelectorAll("button[aria-pressed]").forEach(function (other) {
      other.setAttribute("aria-pressed", "false");
    });
    button.setAttribute("aria-pressed", "true");
    loadRecommendations(seekerId);
  }

  function seekerItem(seeker) {
    const item = D.el("li");
    const button = D.el("button", "seeker");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.appendChild(D.el("span", "badge", t.simulated_badge));
    button.appendChild(D.el("span", "seeker-line", seekerLine(seeker)));
    const home = [seeker.home_label, seeker.district_name].filter(Boolean).join(" · ");
    button.appendChild(D.el("span", "seeker-home", home));
    button.addEventListener("click", function () {
      selectSeeker(button, seeker.seeker_id);
    });
    item.appendChild(button);
    return item;
  }

  async function loadSeekers() {
    try {
      const body = await D.fetchJson("/v1/seekers?limit=50&offset=0");
      body.items.forEach(function (seeker) {
        seekerList.appendChild(seekerItem(seeker));
      });
      seekerStatus.textContent = body.items.length === 0 ? t.no_seekers : "";
    } catch (err) {
      D.showError(seekerStatus, err);
    }
  }

  map.on("click", function (event) {
    nearbyQuery = { lon: event.latlng.lng, lat: event.latlng.lat, page: 1 };
    seekerList.querySelectorAll("button[aria-pressed]").forEach(function (other) {
      other.setAttribute("aria-pressed", "false");
    });
    loadNearby();
  });
  prevButton.addEventListener("click", function () {
    nearbyQuery.page -= 1;
    loadNearby();
  });
  nextButton.addEventListener("click", function () {
    nearbyQuery.page += 1;
    loadNearby();
  });
  radiusSelect.addEventListener("change", function () {
    if (nearbyQuery) {
      nearbyQuery.page = 1;
      loadNearby();
    }
  });

  D.addDistricts(map, seekerStatus);
  loadSeekers();
})();
