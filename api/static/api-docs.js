// Start Swagger UI on /docs without an inline script, so the page runs under the
// service's Content-Security-Policy (script-src 'self').
//
// When the staff login page left a session token in this tab, the schema request and
// every "Try it out" request carry it with the bound device id. In production the
// schema needs that session; without one the page sends the user to the login page.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("docs-config").textContent);
  const session = window.DoorstepStaffSession;

  if (config.login_required && !session.token()) {
    window.location.assign(session.loginUrl("zh", "expired", "/docs"));
    return;
  }

  function withSession(request) {
    if (session.token()) {
      const headers = session.authHeaders();
      request.headers.Authorization = headers.Authorization;
      request.headers["X-Device-ID"] = headers["X-Device-ID"];
    }
    return request;
  }

  window.SwaggerUIBundle({
    url: config.openapi_url,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    requestInterceptor: withSession,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
