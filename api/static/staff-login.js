// Staff login page (工作人员登录): password, then the SMS or TOTP code with this browser's
// device id, then a new password when the old one is older than 90 days. On success the
// token goes to sessionStorage (staff-session.js) and the browser opens the station page.
//
// The challenge of the first step is kept in a variable only, and dropped when the user
// goes back or the code expires.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const Session = window.DoorstepStaffSession;
  const lang = D.config.lang;

  function byId(id) {
    return document.getElementById(id);
  }

  const passwordForm = byId("password-form");
  const codeForm = byId("code-form");
  const changeForm = byId("change-form");
  const errorLine = byId("login-error");
  const notice = byId("login-notice");
  let challenge = null;

  function showStep(form) {
    [passwordForm, codeForm, changeForm].forEach(function (other) {
      other.hidden = other !== form;
    });
    const first = form.querySelector("input");
    if (first) {
      first.focus();
    }
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = false;
  }

  function clearError() {
    errorLine.textContent = "";
    errorLine.hidden = true;
  }

  function backToPassword() {
    challenge = null;
    byId("login-code").value = "";
    byId("login-password").value = "";
    showStep(passwordForm);
  }

  // POST a JSON body and return {status, body, retryAfter}; a network error throws.
  async function postJson(path, payload, headers) {
    const response = await fetch(D.apiUrl(path), {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, headers || {}),
      body: JSON.stringify(payload),
    });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
    return { status: response.status, body: body, retryAfter: Number.isFinite(retryAfter) ? retryAfter : null };
  }

  function firstDetail(body) {
    return body && Array.isArray(body.detail) ? body.detail[0] : null;
  }

  function serverText(result) {
    const detail = firstDetail(result.body);
    if (detail) {
      return (lang === "zh" && detail.msg_zh) || detail.msg || "HTTP " + result.status;
    }
    return t.request_failed + ": HTTP " + result.status;
  }

  // Return the page's message for a failed login request. The error type comes from the
  // API's detail; lockouts and rate limits get their wait from Retry-After.
  function failureText(result) {
    const detail = firstDetail(result.body);
    const type = detail ? detail.type : "";
    if (result.status === 423) {
      return D.format(t.login_error_locked, { minutes: Math.max(1, Math.ceil((result.retryAfter || 60) / 60)) });
    }
    if (result.status === 429) {
      return D.format(t.login_error_rate_limited, { seconds: result.retryAfter || 60 });
    }
    if (type === "DeviceNotBoundError") {
      return D.format(t.login_error_device, { device: Session.deviceId() });
    }
    const known = {
      LoginFailedError: t.login_error_password,
      WrongCodeError: t.login_error_code_wrong,
      CodeExpiredError: t.login_error_code_expired,
      ChallengeInvalidError: t.login_error_challenge,
    };
    return known[type] || serverText(result);
  }

  async function submitPassword(event) {
    event.preventDefault();
    clearError();
    const login = byId("login-name").value.trim();
    const password = byId("login-password").value;
    if (!login || !password) {
      showError(t.login_error_missing);
      return;
    }
    const result = await postJson("/v1/auth/login", { login: login, password: password });
    if (result.status !== 200) {
      showError(failureText(result));
      return;
    }
    challenge = result.body.challenge;
    const totp = result.body.second_factor === "totp";
    byId("code-hint").textContent = totp ? t.login_code_hint_totp : t.login_code_hint_sms;
    const outboxNote = byId("outbox-note");
    if (outboxNote) {
      outboxNote.hidden = totp;
    }
    showStep(codeForm);
  }

  async function submitCode(event) {
    event.preventDefault();
    clearError();
    const code = byId("login-code").value.trim();
    if (!/^[0-9]{6}$/.test(code)) {
      showError(t.login_error_code_format);
      return;
    }
    const result = await postJson("/v1/auth/verify", { challenge: challenge, code: code, device_id: Session.deviceId() });
    if (result.status !== 200) {
      const type = (firstDetail(result.body) || {}).type;
      // These errors end the challenge because its code was used or has expired, so the
      // user starts again with the password.
      if (["CodeExpiredError", "ChallengeInvalidError", "DeviceNotBoundError"].includes(type) || result.status === 423) {
        backToPassword();
      } else {
        byId("login-code").value = "";
      }
      showError(failureText(result));
      return;
    }
    challenge = null;
    Session.setToken(result.body.token);
    if (result.body.password_change_required) {
      showStep(changeForm);
      return;
    }
    openStationPage();
  }

  async function submitChange(event) {
    event.preventDefault();
    clearError();
    const current = byId("change-current").value;
    const next = byId("change-new").value;
    if (next !== byId("change-confirm").value) {
      showError(t.login_error_confirm);
      return;
    }
    const result = await postJson("/v1/auth/password", { current: current, new: next }, Session.authHeaders());
    if (result.status === 204) {
      openStationPage();
      return;
    }
    if (result.status === 401 || result.status === 423) {
      Session.clearToken();
      backToPassword();
      showError(result.status === 423 ? failureText(result) : t.login_error_session);
      return;
    }
    showError(result.status === 422 ? t.login_error_policy + " " + serverText(result) : failureText(result));
  }

  function openStationPage() {
    window.location.assign(Session.returnPage(lang));
  }

  function guard(handler) {
    return function (event) {
      handler(event).catch(function (err) {
        showError(t.request_failed + ": " + (err && err.message ? err.message : err));
      });
    };
  }

  byId("device-id").textContent = Session.deviceId();
  const reason = new URLSearchParams(window.location.search).get("reason");
  const notices = { expired: t.login_notice_expired, logout: t.login_notice_logout };
  if (reason && notices[reason]) {
    notice.textContent = notices[reason];
    notice.hidden = false;
  }
  passwordForm.addEventListener("submit", guard(submitPassword));
  codeForm.addEventListener("submit", guard(submitCode));
  changeForm.addEventListener("submit", guard(submitChange));
  byId("code-back").addEventListener("click", function () {
    clearError();
    backToPassword();
  });
})();
