// Administrator pages: system (accounts, devices), security (roles, key status) and audit
// (operation-log search, chain verification). Each page shows its tools only to its own
// role. The API enforces the same separation, and a page opened by another role shows a
// notice and sends no request for data. Every value from the API is written with
// textContent, never parsed as HTML. Sign-in works as on the station page: the token is
// in sessionStorage (staff-session.js) and a 401 opens the login page.
"use strict";

(function () {
  const D = window.Doorstep;
  const t = D.messages;
  const el = D.el;
  const Session = window.DoorstepStaffSession;
  const root = document.getElementById("admin");
  const section = root.dataset.section;
  const PAGE = "/admin/" + section;
  const ROLE_OF_SECTION = { system: "system_admin", security: "security_admin", audit: "audit_admin" };
  const ALL_ROLES = ["station_staff", "assistance_officer", "analyst", "system_admin", "security_admin", "audit_admin"];
  const status = document.getElementById("admin-status");

  function toLogin(reason) {
    window.location.assign(Session.loginUrl(D.config.lang, reason, PAGE));
  }

  // Send an authenticated request and return {status, body}; a 401 opens the login page.
  async function request(path, params, options) {
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, Session.authHeaders(), init.headers || {});
    const response = await fetch(D.apiUrl(path, params), init);
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.status === 401) {
      toLogin("expired");
      throw new Error(t.login_error_session);
    }
    return { status: response.status, body: body };
  }

  function sendJson(method, path, payload) {
    return request(path, null, {
      method: method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
  }

  function detailText(result) {
    const first = result.body && Array.isArray(result.body.detail) ? result.body.detail[0] : null;
    if (first) {
      return (D.config.lang === "zh" && first.msg_zh) || first.msg || "HTTP " + result.status;
    }
    return "HTTP " + result.status;
  }

  function show(text) {
    status.textContent = text;
  }

  function roleText(roles) {
    return roles.map(function (role) { return t.admin_role_labels[role] || role; }).join("、");
  }

  function cell(row, text) {
    row.appendChild(el("td", null, text));
  }

  function button(label, onClick) {
    const node = el("button", null, label);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  // System administrator

  function accountState(account) {
    if (account.disabled) {
      return t.admin_state_disabled;
    }
    if (account.locked_until && new Date(account.locked_until) > new Date()) {
      return t.admin_state_locked;
    }
    return t.admin_state_active;
  }

  async function loadAccounts() {
    const result = await request("/v1/admin/accounts", { limit: 500 });
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    const body = document.querySelector("#accounts tbody");
    body.replaceChildren();
    result.body.forEach(function (account) {
      const row = el("tr");
      row.dataset.accountId = account.account_id;
      cell(row, account.login);
      cell(row, account.name_masked);
      cell(row, account.org_id || "");
      cell(row, roleText(account.roles));
      cell(row, accountState(account));
      const actions = el("td", "admin-actions");
      actions.appendChild(button(t.admin_action_disable, function () { accountAction(account, "disable"); }));
      actions.appendChild(button(t.admin_action_unlock, function () { accountAction(account, "unlock"); }));
      actions.appendChild(button(t.admin_action_devices, function () { loadDevices(account); }));
      row.appendChild(actions);
      body.appendChild(row);
    });
    show(t.admin_accounts_count.replace("{n}", String(result.body.length)));
  }

  async function accountAction(account, action) {
    const result = await request("/v1/admin/accounts/" + encodeURIComponent(account.account_id) + "/" + action, null, { method: "POST" });
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    await loadAccounts();
    show((action === "disable" ? t.admin_done_disable : t.admin_done_unlock).replace("{login}", account.login));
  }

  async function loadDevices(account) {
    const path = "/v1/admin/accounts/" + encodeURIComponent(account.account_id) + "/devices";
    const result = await request(path);
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    document.getElementById("devices").hidden = false;
    document.getElementById("devices-login").textContent = account.login;
    const list = document.getElementById("device-list");
    list.replaceChildren();
    if (result.body.length === 0) {
      list.appendChild(el("li", null, t.admin_devices_none));
    }
    result.body.forEach(function (device) {
      const item = el("li", null, device.device_id + (device.label ? " · " + device.label : "") + " ");
      item.appendChild(button(t.admin_action_unbind, async function () {
        const done = await request(path + "/" + encodeURIComponent(device.device_id), null, { method: "DELETE" });
        show(done.status === 204 ? t.admin_done_unbind.replace("{device}", device.device_id) : detailText(done));
        await loadDevices(account);
      }));
      list.appendChild(item);
    });
  }

  async function createAccount(event) {
    event.preventDefault();
    const form = event.target;
    const payload = Object.fromEntries(new FormData(form).entries());
    const result = await sendJson("POST", "/v1/admin/accounts", payload);
    const out = document.getElementById("create-result");
    if (result.status !== 201) {
      out.textContent = detailText(result);
      return;
    }
    form.reset();
    let text = t.admin_done_create.replace("{login}", result.body.login);
    if (result.body.totp_secret) {
      text += " " + t.admin_totp_once.replace("{secret}", result.body.totp_secret);
    }
    out.textContent = text;
    await loadAccounts();
  }

  // Security administrator

  async function loadKeys() {
    const result = await request("/v1/admin/keys");
    const list = document.getElementById("key-status");
    list.replaceChildren();
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    const keys = result.body;
    const rows = [
      [t.admin_key_pi_active, keys.pi_active_key + " (" + keys.pi_key_ids.join(", ") + ")"],
      [t.admin_key_seekers_left, keys.seeker_rows_under_other_keys === null ? "—" : String(keys.seeker_rows_under_other_keys)],
      [t.admin_key_accounts_left, String(keys.account_rows_under_other_keys)],
      [t.admin_key_audit_active, keys.audit_active_key + " (" + keys.audit_key_ids.join(", ") + ")"],
      [t.admin_key_audit_chain, keys.audit_chain_key + " · " + t.admin_key_rotations.replace("{n}", String(keys.audit_rotations))],
    ];
    rows.forEach(function (pair) {
      list.appendChild(el("dt", null, pair[0]));
      list.appendChild(el("dd", null, pair[1]));
    });
  }

  async function loadRoles() {
    const result = await request("/v1/admin/role-assignments", { limit: 500 });
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    const body = document.querySelector("#role-table tbody");
    body.replaceChildren();
    result.body.forEach(function (account) {
      const row = el("tr");
      row.dataset.accountId = account.account_id;
      cell(row, account.login);
      cell(row, account.name_masked);
      cell(row, account.org_id || "");
      ALL_ROLES.forEach(function (role) {
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = role;
        box.checked = account.roles.indexOf(role) !== -1;
        box.setAttribute("aria-label", account.login + " " + (t.admin_role_labels[role] || role));
        const td = el("td");
        td.appendChild(box);
        row.appendChild(td);
      });
      const actions = el("td");
      actions.appendChild(button(t.admin_action_save_roles, async function () {
        const roles = Array.from(row.querySelectorAll("input:checked"), function (box) { return box.value; });
        const path = "/v1/admin/accounts/" + encodeURIComponent(account.account_id) + "/roles";
        const saved = await sendJson("PUT", path, { roles: roles });
        show(saved.status === 200 ? t.admin_done_roles.replace("{login}", account.login) : detailText(saved));
        if (saved.status !== 200) {
          await loadRoles();
        }
      }));
      row.appendChild(actions);
      body.appendChild(row);
    });
  }

  // Audit administrator

  async function runVerify() {
    const out = document.getElementById("verify-result");
    out.textContent = t.admin_verify_running;
    const result = await request("/v1/audit/verify");
    if (result.status !== 200) {
      out.textContent = detailText(result);
      return;
    }
    const chain = result.body;
    out.className = chain.ok ? "verify-ok" : "verify-broken";
    out.textContent = chain.ok
      ? t.admin_verify_ok.replace("{n}", String(chain.checked)).replace("{keys}", String(chain.keys))
      : t.admin_verify_broken.replace("{seq}", String(chain.problem_seq === null ? "—" : chain.problem_seq)) + " " + chain.message;
  }

  async function search(event) {
    if (event) {
      event.preventDefault();
    }
    const params = { limit: 200 };
    new FormData(document.getElementById("audit-search")).forEach(function (value, name) {
      if (value) {
        params[name] = value;
      }
    });
    const result = await request("/v1/audit/search", params);
    if (result.status !== 200) {
      show(detailText(result));
      return;
    }
    const body = document.querySelector("#audit-table tbody");
    body.replaceChildren();
    result.body.forEach(function (record) {
      const row = el("tr");
      [String(record.seq), record.at, record.actor, record.role, record.action, record.object_id, record.result]
        .forEach(function (value) { cell(row, value); });
      body.appendChild(row);
    });
    show(t.admin_search_count.replace("{n}", String(result.body.length)));
  }

  async function start() {
    if (!Session.token()) {
      toLogin(null);
      return;
    }
    document.getElementById("logout").addEventListener("click", async function () {
      await request("/v1/auth/logout", null, { method: "POST" });
      Session.clearToken();
      toLogin("logout");
    });
    const me = await request("/v1/auth/me");
    if (me.status !== 200) {
      show(detailText(me));
      return;
    }
    const meBox = document.getElementById("admin-me");
    meBox.textContent = me.body.login + " · " + roleText(me.body.roles);
    meBox.hidden = false;
    if (me.body.roles.indexOf(ROLE_OF_SECTION[section]) === -1) {
      document.getElementById("admin-denied").hidden = false;
      return;
    }
    document.getElementById("panel-" + section).hidden = false;
    if (section === "system") {
      document.getElementById("create-account").addEventListener("submit", createAccount);
      await loadAccounts();
    } else if (section === "security") {
      await loadKeys();
      await loadRoles();
    } else {
      document.getElementById("verify-run").addEventListener("click", runVerify);
      document.getElementById("audit-search").addEventListener("submit", search);
      await search(null);
    }
  }

  start().catch(function (err) {
    show(err.message);
  });
})();
