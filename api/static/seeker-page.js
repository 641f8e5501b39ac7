// Seeker page (求职者页面): pick a simulated seeker (paged list, group filter, or by id)
// or click the map, then list the ranked jobs with distance, precision and reasons, and
// show them around the home marker. Picking a seeker opens a development session as that
// seeker, so the page works in development only. A push link (?job=<posting id>) opens
// the page on that job.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  // Both sizes are already capped at the server's max_page_size by api/pages.py.
  const SEEKER_PAGE_SIZE = D.config.seeker_page_size;
  const JOB_PAGE_SIZE = D.config.job_page_size;

  const seekerStatus = document.getElementById("seekers-status");
  const seekerList = document.getElementById("seeker-list");
  const seekerPager = document.getElementById("seeker-pager");
  const seekerPrev = document.getElementById("seekers-prev");
  const seekerNext = document.getElementById("seekers-next");
  const seekerPageStatus = document.getElementById("seekers-page-status");
  const groupSelect = document.getElementById("group");
  const idForm = document.getElementById("seeker-id-form");
  const idInput = document.getElementById("seeker-id");
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
  const seekerQuery = { page: 1, pages: 1 }; // the page of the seeker list on show
  let seekerRequest = null;

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

  function salaryText(job) {
    return job.salary_text || t.salary_unknown;
  }

  // Each location fact once: the distance (or 位置仅知在西安), then the precision label
  // and the place, both left out for a city-level job because 位置仅知在西安 covers them.
  function locationFacts(job) {
    const cityLevel = job.precision === D.CITY;
    return {
      distance: D.distanceText(job.distance_m, job.precision, job.approximate),
      precision: cityLevel ? null : D.precisionLabel(job.precision, job.precision_label),
      place: cityLevel ? "" : D.placeText(job.location_label, job.district_name),
    };
  }

  function jobPopup(job) {
    const facts = locationFacts(job);
    return D.popupElement(job.title, [
      [null, job.company],
      [null, salaryText(job)],
      [null, facts.distance],
      [t.popup_precision, facts.precision],
      [t.popup_location, facts.place],
    ]);
  }

  function jobCard(job, marker) {
    const item = D.el("li", "job");
    item.appendChild(D.el("h3", "job-title", job.title));
    item.appendChild(D.el("p", "job-company", job.company));

    const facts = locationFacts(job);
    const line = D.el("p", "job-facts");
    line.appendChild(D.el("span", "salary", salaryText(job)));
    if (facts.distance) {
      line.appendChild(D.el("span", "distance", facts.distance));
    }
    if (facts.precision) {
      line.appendChild(D.el("span", "precision", facts.precision));
    }
    item.appendChild(line);

    if (facts.place) {
      item.appendChild(D.el("p", "job-place", facts.place));
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

  // City-level jobs get no marker: their point is a stand-in at the city centre.
  function jobMarker(job) {
    if (job.precision === D.CITY || typeof job.lon !== "number" || typeof job.lat !== "number") {
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
    summary.appendChild(D.el("p", "seeker-id", seeker.seeker_id));
    summary.appendChild(D.el("p", null, seekerLine(seeker)));
    const home = D.placeText(seeker.home_label, seeker.district_name);
    if (home) {
      summary.appendChild(D.el("p", null, home));
    }
    if (seeker.max_commute_min) {
      summary.appendChild(D.el("p", null, D.format(t.commute_limit, { min: seeker.max_commute_min })));
    }
  }

  // Recommendations are served only to the seeker's own session, so the development demo
  // logs in as the simulated seeker it shows (the route returns 404 in production).
  async function seekerSession(seekerId, signal) {
    const url = D.apiUrl("/v1/dev/seekers/" + encodeURIComponent(seekerId) + "/session", {});
    const body = await D.fetchJson(url, { method: "POST", signal: signal });
    return body.token;
  }

  async function loadRecommendations(seekerId) {
    const signal = startRequest();
    nearbyQuery = null;
    pager.hidden = true;
    try {
      const token = await seekerSession(seekerId, signal);
      const url = D.apiUrl("/v1/me/recommendations", { limit: JOB_PAGE_SIZE });
      const body = await D.fetchJson(url, {
        signal: signal,
        headers: { Accept: "application/json", Authorization: "Bearer " + token },
      });
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
      page_size: JOB_PAGE_SIZE,
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

  // The job a push linked to; a closed posting gets its own message, not an error.
  async function loadPushedJob(postingId) {
    const signal = startRequest();
    try {
      const url = D.apiUrl("/v1/jobs/" + encodeURIComponent(postingId), {});
      const response = await fetch(url, { headers: { Accept: "application/json" }, signal: signal });
      if (response.status === 404) {
        jobsStatus.textContent = t.pushed_job_closed;
        return;
      }
      if (!response.ok) {
        throw new Error(D.errorText(response.status, await response.json().catch(function () { return null; })));
      }
      const job = await response.json();
      resultLayer.clearLayers();
      summary.replaceChildren(D.el("h3", null, t.pushed_job_title));
      showJobs([job]);
      fitResults();
      const card = jobList.querySelector("li.job");
      if (card) {
        card.classList.add("pushed");
      }
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

  function clearSelection() {
    seekerList.querySelectorAll("button[aria-pressed]").forEach(function (other) {
      other.setAttribute("aria-pressed", "false");
    });
  }

  function selectSeeker(button, seekerId) {
    clearSelection();
    button.setAttribute("aria-pressed", "true");
    loadRecommendations(seekerId);
  }

  function seekerItem(seeker) {
    const item = D.el("li");
    const button = D.el("button", "seeker");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.appendChild(D.el("span", "badge", t.simulated_badge));
    button.appendChild(D.el("span", "seeker-id", seeker.seeker_id));
    button.appendChild(D.el("span", "seeker-line", seekerLine(seeker)));
    button.appendChild(D.el("span", "seeker-home", D.placeText(seeker.home_label, seeker.district_name)));
    button.addEventListener("click", function () {
      selectSeeker(button, seeker.seeker_id);
    });
    item.appendChild(button);
    return item;
  }

  function showSeekerPager(total) {
    seekerQuery.pages = Math.max(1, Math.ceil(total / SEEKER_PAGE_SIZE));
    seekerPager.hidden = total === 0;
    seekerPrev.disabled = seekerQuery.page <= 1;
    seekerNext.disabled = seekerQuery.page >= seekerQuery.pages;
    seekerPageStatus.textContent = D.format(t.seeker_page_status, {
      page: D.formatCount(seekerQuery.page),
      total: D.formatCount(total),
    });
  }

  // One page of the seeker list. The group filter is applied by the API (group=...);
  // nothing is filtered here, so the total and the pages match the server's.
  async function loadSeekers() {
    if (seekerRequest) {
      seekerRequest.abort();
    }
    seekerRequest = new AbortController();
    seekerStatus.classList.remove("error");
    seekerStatus.textContent = t.loading;
    const url = D.apiUrl("/v1/dev/seekers", {
      limit: SEEKER_PAGE_SIZE,
      offset: (seekerQuery.page - 1) * SEEKER_PAGE_SIZE,
      group: groupSelect.value || null,
    });
    try {
      const body = await D.fetchJson(url, { signal: seekerRequest.signal });
      seekerList.replaceChildren();
      body.items.forEach(function (seeker) {
        seekerList.appendChild(seekerItem(seeker));
      });
      seekerStatus.textContent = body.items.length === 0 ? t.no_seekers : "";
      showSeekerPager(body.total);
    } catch (err) {
      D.showError(seekerStatus, err);
    }
  }

  map.on("click", function (event) {
    nearbyQuery = { lon: event.latlng.lng, lat: event.latlng.lat, page: 1 };
    clearSelection();
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

  seekerPrev.addEventListener("click", function () {
    if (seekerQuery.page > 1) {
      seekerQuery.page -= 1;
      loadSeekers();
    }
  });
  seekerNext.addEventListener("click", function () {
    if (seekerQuery.page < seekerQuery.pages) {
      seekerQuery.page += 1;
      loadSeekers();
    }
  });
  groupSelect.addEventListener("change", function () {
    seekerQuery.page = 1;
    loadSeekers();
  });
  idForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const seekerId = idInput.value.trim();
    if (!seekerId) {
      jobsStatus.classList.add("error");
      jobsStatus.textContent = t.seeker_id_missing;
      return;
    }
    clearSelection();
    loadRecommendations(seekerId);
  });

  D.addDistricts(map, seekerStatus, function () {
    return resultLayer.getLayers().length === 0;
  });
  loadSeekers();
  const pushedJob = new URLSearchParams(window.location.search).get("job");
  if (pushedJob) {
    loadPushedJob(pushedJob);
  }
})();
