// The staff sign-in state shared by the login page and the station page.
//
// The access token lives in sessionStorage only, so it ends with the browser tab. It is
// sent in the Authorization header, never in a URL, never written to the page and never
// logged. The device id lives in localStorage, because a security administrator binds
// it to the account once and it must stay the same across sign-ins.
"use strict";

window.DoorstepStaffSession = (function () {
  const TOKEN_KEY = "doorstep.staffToken";
  const DEVICE_KEY = "doorstep.deviceId";
  // The API accepts 1-128 characters of letters, digits and "._:-" as a device id.
  const DEVICE_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY);
  }

  function setToken(value) {
    window.sessionStorage.setItem(TOKEN_KEY, value);
  }

  function clearToken() {
    window.sessionStorage.removeItem(TOKEN_KEY);
  }

  function randomHex(bytes) {
    const values = new Uint8Array(bytes);
    window.crypto.getRandomValues(values);
    return Array.from(values, function (value) { return value.toString(16).padStart(2, "0"); }).join("");
  }

  // Return this browser's device id, generating "web-" and 16 random hex digits once.
  function deviceId() {
    let value = window.localStorage.getItem(DEVICE_KEY);
    if (!value || !DEVICE_PATTERN.test(value)) {
      value = "web-" + randomHex(8);
      window.localStorage.setItem(DEVICE_KEY, value);
    }
    return value;
  }

  // Headers of an authenticated staff request: the bearer token and the bound device.
  function authHeaders() {
    return { Authorization: "Bearer " + token(), "X-Device-ID": deviceId() };
  }

  // Pages the login page may return to after signing in. A fixed list, so a crafted
  // link cannot send a freshly signed-in user to another site.
  const RETURN_PAGES = [
    "/staff", "/docs", "/officer", "/analyst", "/admin/system", "/admin/security", "/admin/audit",
  ];

  // The login page URL; reason is "expired" or "logout" and selects the notice shown
  // there, and next is the page of RETURN_PAGES to open after signing in.
  function loginUrl(lang, reason, next) {
    const params = new URLSearchParams({ lang: lang });
    if (reason) {
      params.set("reason", reason);
    }
    if (next && RETURN_PAGES.indexOf(next) !== -1) {
      params.set("next", next);
    }
    return "/staff/login?" + params.toString();
  }

  // The page to open after signing in: the login URL's next when it is allowed, else
  // the station page.
  function returnPage(lang) {
    const next = new URLSearchParams(window.location.search).get("next");
    const page = next && RETURN_PAGES.indexOf(next) !== -1 ? next : "/staff";
    return page + "?lang=" + encodeURIComponent(lang);
  }

  return {
    token: token,
    setToken: setToken,
    clearToken: clearToken,
    deviceId: deviceId,
    authHeaders: authHeaders,
    loginUrl: loginUrl,
    returnPage: returnPage,
  };
})();
