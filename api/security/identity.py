"""Login, second factor, server-side sessions and device binding, without HTTP.

A staff login has two steps. :meth:`IdentityService.start_staff_login` checks
the password and returns a five-minute challenge token (sending an SMS code
when the account's second factor is SMS). :meth:`finish_staff_login` checks the
SMS or TOTP code and the device, opens a server-side session and returns an
access token. Seekers log in with an SMS code alone.

Access tokens are PyJWT HS256 tokens (the only accepted algorithm) with issuer
``doorstep`` and an audience per kind of account. They carry the session id,
and :meth:`authenticate` checks that session on every request, so logout, a
lock or 30 idle minutes end a token at once.
"""

import logging
import math
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pyotp
from pyotp.exceptions import OTPVerificationError

from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher, FieldContext
from api.security.passwords import (
    PasswordPolicyError,
    check_complexity,
    hash_password,
    password_expired,
    verify_against_dummy,
    verify_password,
)
from api.security.sms import SmsGateway
from api.security.validation import normalise_mobile
from geo.errors import DoorstepError
from store.identity import (
    Account,
    AccountKind,
    IdentityStore,
    OneTimeCode,
    Role,
    RoleConflictError,
    SecondFactor,
    Session,
)
from store.rate_limit import RateLimiter

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "doorstep"
AUDIENCES: dict[AccountKind, str] = {"staff": "doorstep-staff", "seeker": "doorstep-seeker"}
CHALLENGE_AUDIENCE = "doorstep-login"

FAILURE_WINDOW = timedelta(minutes=15)
FAILURE_LIMIT = 5
LOCK_DURATION = timedelta(minutes=30)
IDLE_TIMEOUT = timedelta(minutes=30)
CODE_LIFETIME = timedelta(minutes=5)
CODE_MAX_ATTEMPTS = 5
TOKEN_LIFETIME = timedelta(hours=12)
CODE_DIGITS = 6
# TOTP steps accepted on each side of the current one, for clock drift (30 s per step).
TOTP_DRIFT_STEPS = 1


class AuthenticationError(DoorstepError):
    """Root of login and session failures; messages never quote passwords, codes or mobiles."""


class LoginFailedError(AuthenticationError, PermissionError):
    """Wrong login name or password; the message does not say which."""

    message_zh = "账号或密码错误"


class WrongCodeError(LoginFailedError):
    """A one-time or TOTP code that does not match, or was already used."""

    message_zh = "验证码错误，请核对后重新输入"


class CodeExpiredError(LoginFailedError):
    """A login challenge older than five minutes, so its SMS code has expired too."""

    message_zh = "验证码已过期，请重新输入密码以获取新的验证码"


class ChallengeInvalidError(LoginFailedError):
    """A login challenge that is not one this service signed for a current account."""

    message_zh = "登录步骤已失效，请重新输入账号和密码"


class AccountLockedError(AuthenticationError, PermissionError):
    """An account locked after repeated failures, until ``locked_until``."""

    def __init__(self, locked_until: datetime, now: datetime) -> None:
        super().__init__(f"account is locked until {locked_until.isoformat(timespec='seconds')}")
        self.locked_until = locked_until
        self.retry_after_s = max(1, math.ceil((locked_until - now).total_seconds()))
        minutes = math.ceil(self.retry_after_s / 60)
        self.message_zh = f"账号已锁定，请在 {minutes} 分钟后重试"


class CodeRateLimitedError(AuthenticationError, RuntimeError):
    """Another one-time code for this mobile was requested too soon."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"a code was sent to this mobile recently; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.message_zh = f"验证码发送过于频繁，请在 {retry_after_s} 秒后重试"


class SessionInvalidError(AuthenticationError, PermissionError):
    """A token that is malformed, expired, or whose session ended (logout, lock, idle)."""


class TokenExpiredError(SessionInvalidError):
    """A correctly signed token whose ``exp`` has passed."""


class DeviceNotBoundError(AuthenticationError, PermissionError):
    """A staff request from a device that is not bound to the account."""


@dataclass(frozen=True, slots=True)
class LoginChallenge:
    """The first login step's result: a challenge token and the second factor it expects."""

    token: str
    second_factor: SecondFactor


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token bound to a new server-side session."""

    token: str
    session_id: str
    expires_at: datetime
    password_change_required: bool


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request: their account and live session."""

    account: Account
    session: Session
    password_change_required: bool

    @property
    def roles(self) -> frozenset[Role]:
        """The roles of the account."""
        return self.account.roles


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A created account, with the TOTP secret to enrol in an authenticator app when chosen."""

    account: Account
    totp_secret: str | None


class IdentityService:
    """Accounts, logins and sessions over an :class:`IdentityStore`."""

    def __init__(
        self,
        store: IdentityStore,
        *,
        cipher: FieldCipher,
        index: BlindIndex,
        gateway: SmsGateway,
        sms_limiter: RateLimiter,
        token_key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.cipher = cipher
        self.index = index
        self.gateway = gateway
        self.sms_limiter = sms_limiter
        self._token_key = token_key
        self.clock = clock

    # Accounts

    def create_staff(
        self,
        *,
        login: str,
        name: str,
        mobile: str,
        org_id: str,
        roles: Iterable[Role],
        password: str,
        second_factor: SecondFactor = "sms",
    ) -> NewAccount:
        """Create a staff account; raise PasswordPolicyError, RoleConflictError and the like."""
        roles = frozenset(roles)
        if Role.SEEKER in roles:
            raise RoleConflictError(
                "role seeker belongs to seeker accounts, which log in with an SMS code;"
                " give a staff account a staff role such as station_staff"
            )
        check_complexity(password, login=login)
        normalised = normalise_mobile(mobile)
        account_id = f"staff-{uuid.uuid4().hex[:12]}"
        totp_secret = pyotp.random_base32() if second_factor == "totp" else None
        now = self.clock()
        account = Account(
            account_id=account_id,
            kind="staff",
            login=login,
            org_id=org_id,
            name_enc=self._encrypt(name, account_id, "name_enc"),
            mobile_enc=self._encrypt(normalised, account_id, "mobile_enc"),
            mobile_index=self.index.digest("mobile", normalised),
            password_hash=hash_password(password),
            password_changed_at=now,
            second_factor=second_factor,
            totp_secret_enc=None
            if totp_secret is None
            else self._encrypt(totp_secret, account_id, "totp_secret_enc"),
            locked_until=None,
            created_at=now,
            roles=roles,
        )
        self.store.create_account(account)
        logger.info("staff account %s created in %s", account_id, org_id)
        return NewAccount(account, totp_secret)

    def decrypt_name(self, account: Account) -> str:
        """Return the account holder's name in plaintext (mask it before display)."""
        return self.cipher.decrypt(
            account.name_enc, FieldContext("accounts", "name_enc", account.account_id)
        )

    def _encrypt(self, value: str, account_id: str, column: str) -> str:
        return self.cipher.encrypt(value, FieldContext("accounts", column, account_id))

    # Staff login

    def start_staff_login(self, login: str, password: str) -> LoginChallenge:
        """Check a staff password and return a challenge for the second factor.

        Raises
        ------
        LoginFailedError
            Unknown login or wrong password; a wrong password counts towards lockout.
        AccountLockedError
            The account is locked, or this failure locked it.
        CodeRateLimitedError
            The SMS code for this account was requested too recently.
        """
        now = self.clock()
        account = self.store.account_by_login(login)
        if account is None or account.password_hash is None:
            verify_against_dummy(password)
            raise LoginFailedError("login name or password is wrong")
        self._ensure_unlocked(account, now)

        check = verify_password(account.password_hash, password)
        if not check.matched:
            self._count_failure(account, now)
            raise LoginFailedError("login name or password is wrong")
        if check.new_hash is not None:
            self.store.set_password(account.account_id, check.new_hash, _changed_at(account))

        if account.second_factor == "sms":
            self._send_code(account.mobile_index, self._mobile(account), "staff_login")
        return LoginChallenge(self._challenge(account, now), account.second_factor)

    def finish_staff_login(self, challenge: str, code: str, device_id: str) -> IssuedToken:
        """Check the second factor and the device, then open a session.

        Raises LoginFailedError, AccountLockedError or DeviceNotBoundError.
        """
        now = self.clock()
        account = self._challenged_account(challenge)
        self._ensure_unlocked(account, now)
        if not self._second_factor_ok(account, code, now):
            self._count_failure(account, now)
            raise WrongCodeError("verification code is wrong or was already used")
        if not self.store.device_bound(account.account_id, device_id):
            raise DeviceNotBoundError(
                f"device {device_id!r} is not bound to this account; ask a security"
                " administrator to bind it"
            )
        self.store.clear_login_failures(account.account_id)
        return self._open_session(account, device_id, now)

    def _second_factor_ok(self, account: Account, code: str, now: datetime) -> bool:
        if account.second_factor == "sms":
            return self._consume_code(account.mobile_index, "staff_login", code, now)
        if account.totp_secret_enc is None:
            return False
        secret = self.cipher.decrypt(
            account.totp_secret_enc,
            FieldContext("accounts", "totp_secret_enc", account.account_id),
        )
        step = matching_totp_step(pyotp.TOTP(secret), code, now)
        # The store keeps the last used step, so a code works once, and an older code of
        # the drift window no longer works after a newer one.
        return step is not None and self.store.use_totp_step(account.account_id, step)

    def _ensure_unlocked(self, account: Account, now: datetime) -> None:
        if account.locked_until is not None and account.locked_until > now:
            raise AccountLockedError(account.locked_until, now)

    def _count_failure(self, account: Account, now: datetime) -> None:
        locked_until = self.store.record_login_failure(
            account.account_id, now, window=FAILURE_WINDOW, limit=FAILURE_LIMIT,
            lock_for=LOCK_DURATION,
        )  # fmt: skip
        if locked_until is None:
            return
        revoked = self.store.revoke_account_sessions(account.account_id, now, "locked")
        logger.warning(
            "account %s locked until %s after %d failed logins; %d sessions revoked",
            account.account_id, locked_until.isoformat(), FAILURE_LIMIT, revoked,
        )  # fmt: skip
        raise AccountLockedError(locked_until, now)

    def _challenge(self, account: Account, now: datetime) -> str:
        claims = {
            "iss": ISSUER,
            "aud": CHALLENGE_AUDIENCE,
            "sub": account.account_id,
            "iat": now,
            "exp": now + CODE_LIFETIME,
        }
        return jwt.encode(claims, self._token_key, algorithm=ALGORITHM)

    def _challenged_account(self, challenge: str) -> Account:
        try:
            claims = self._decode(challenge, CHALLENGE_AUDIENCE)
        except TokenExpiredError as err:
            # The SMS code is sent just before the challenge is signed and lives as long.
            raise CodeExpiredError("login challenge has expired; log in again") from err
        except SessionInvalidError as err:
            raise ChallengeInvalidError("login challenge is invalid; log in again") from err
        account = self.store.account(str(claims["sub"]))
        if account is None:
            raise ChallengeInvalidError("login challenge names no account; log in again")
        return account

    # Seeker login

    def request_seeker_code(self, mobile: str) -> None:
        """Send a login code to a seeker's mobile; raise CodeRateLimitedError when too soon."""
        normalised = normalise_mobile(mobile)
        self._send_code(self.index.digest("mobile", normalised), normalised, "seeker_login")

    def finish_seeker_login(self, mobile: str, code: str) -> IssuedToken:
        """Check a seeker's SMS code and open a session, creating the seeker account if new."""
        now = self.clock()
        normalised = normalise_mobile(mobile)
        mobile_index = self.index.digest("mobile", normalised)
        if not self._consume_code(mobile_index, "seeker_login", code, now):
            raise WrongCodeError("verification code is wrong, expired or was already used")
        return self.open_seeker_session(normalised)

    def open_seeker_session(self, mobile: str) -> IssuedToken:
        """Open a session for a seeker's mobile without a code, creating the account if new.

        Only :meth:`finish_seeker_login` and the development demo route call it; the
        demo route answers 404 in production.
        """
        now = self.clock()
        normalised = normalise_mobile(mobile)
        mobile_index = self.index.digest("mobile", normalised)
        account = self.store.account_by_mobile("seeker", mobile_index)
        if account is None:
            account = self._new_seeker(normalised, mobile_index, now)
        self._ensure_unlocked(account, now)
        return self._open_session(account, None, now)

    def _new_seeker(self, mobile: str, mobile_index: str, now: datetime) -> Account:
        account_id = f"seeker-{uuid.uuid4().hex[:12]}"
        account = Account(
            account_id=account_id, kind="seeker", login=account_id, org_id=None,
            name_enc=self._encrypt("", account_id, "name_enc"),
            mobile_enc=self._encrypt(mobile, account_id, "mobile_enc"),
            mobile_index=mobile_index, password_hash=None, password_changed_at=None,
            second_factor="sms", totp_secret_enc=None, locked_until=None, created_at=now,
            roles=frozenset({Role.SEEKER}),
        )  # fmt: skip
        self.store.create_account(account)
        return account

    # One-time codes

    def _send_code(self, mobile_index: str, mobile: str, purpose: str) -> None:
        decision = self.sms_limiter.hit(f"sms:{mobile_index}")
        if not decision.allowed:
            raise CodeRateLimitedError(decision.retry_after_s)
        now = self.clock()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        self.store.store_code(
            OneTimeCode(
                f"otc-{uuid.uuid4().hex}", mobile_index, purpose,
                self._code_hash(mobile_index, purpose, code), now, now + CODE_LIFETIME,
            )
        )  # fmt: skip
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        self.gateway.send(
            mobile, f"【家门口就业】验证码 {code}，{minutes} 分钟内有效，请勿告诉他人。", now
        )

    def _consume_code(self, mobile_index: str, purpose: str, code: str, now: datetime) -> bool:
        code_hash = self._code_hash(mobile_index, purpose, code.strip())
        return self.store.consume_code(
            mobile_index, purpose, code_hash, now, max_attempts=CODE_MAX_ATTEMPTS
        )

    def _code_hash(self, mobile_index: str, purpose: str, code: str) -> str:
        # Keyed, so a copy of the table alone does not let anyone test the million codes.
        return self.index.digest("one_time_code", f"{purpose}:{mobile_index}:{code}")

    def _mobile(self, account: Account) -> str:
        return self.cipher.decrypt(
            account.mobile_enc, FieldContext("accounts", "mobile_enc", account.account_id)
        )

    # Sessions

    def _open_session(self, account: Account, device_id: str | None, now: datetime) -> IssuedToken:
        session = Session(
            f"sess-{secrets.token_urlsafe(24)}", account.account_id, device_id, now, now
        )
        self.store.create_session(session)
        expires_at = now + TOKEN_LIFETIME
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCES[account.kind],
            "sub": account.account_id,
            "sid": session.session_id,
            "iat": now,
            "exp": expires_at,
        }
        token = jwt.encode(claims, self._token_key, algorithm=ALGORITHM)
        logger.info("session opened for account %s", account.account_id)
        required = account.kind == "staff" and password_expired(account.password_changed_at, now)
        return IssuedToken(token, session.session_id, expires_at, required)

    def authenticate(self, token: str, kind: AccountKind, device_id: str | None) -> Principal:
        """Return the caller of a request after checking token, session, lock and device.

        A staff token also needs ``device_id`` to be the session's device and still bound.
        """
        now = self.clock()
        claims = self._decode(token, AUDIENCES[kind])
        session = self.store.touch_session(str(claims.get("sid", "")), now, IDLE_TIMEOUT)
        if session is None or session.account_id != claims["sub"]:
            raise SessionInvalidError("session has ended (logout, lock or 30 idle minutes)")
        account = self.store.account(session.account_id)
        if account is None or account.kind != kind:
            raise SessionInvalidError("session has ended (logout, lock or 30 idle minutes)")
        if account.locked_until is not None and account.locked_until > now:
            raise SessionInvalidError("account is locked")
        if kind == "staff":
            self._check_device(account, session, device_id)
        required = kind == "staff" and password_expired(account.password_changed_at, now)
        return Principal(account, session, required)

    def _check_device(self, account: Account, session: Session, device_id: str | None) -> None:
        if device_id is None or device_id != session.device_id:
            raise DeviceNotBoundError("device id header is missing or differs from the login's")
        if not self.store.device_bound(account.account_id, device_id):
            raise DeviceNotBoundError(f"device {device_id!r} is no longer bound to this account")

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        # Expiry is checked against the service clock, not PyJWT's, so tests can move time.
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._token_key, algorithms=[ALGORITHM], audience=audience,
                issuer=ISSUER,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )  # fmt: skip
        except jwt.InvalidTokenError as err:
            raise SessionInvalidError(f"token is invalid: {type(err).__name__}") from err
        expires = claims["exp"]
        if not isinstance(expires, int | float) or expires <= self.clock().timestamp():
            raise TokenExpiredError("token has expired")
        return claims

    def logout(self, session_id: str) -> bool:
        """Revoke a session at once; return whether it was live."""
        return self.store.revoke_session(session_id, self.clock(), "logout")

    def lock(self, account_id: str, until: datetime) -> int:
        """Lock an account and revoke its sessions at once; return how many were revoked."""
        now = self.clock()
        self.store.lock_account(account_id, until)
        return self.store.revoke_account_sessions(account_id, now, "locked")

    def change_password(self, account: Account, old: str, new: str) -> None:
        """Replace a staff password after checking the old one and the complexity rule."""
        if account.password_hash is None or not verify_password(account.password_hash, old).matched:
            self._count_failure(account, self.clock())
            raise LoginFailedError("current password is wrong")
        check_complexity(new, login=account.login)
        if verify_password(account.password_hash, new).matched:
            raise PasswordPolicyError("reused", "new password must differ from the current one")
        self.store.set_password(account.account_id, hash_password(new), self.clock())


def matching_totp_step(totp: pyotp.TOTP, code: str, now: datetime) -> int | None:
    """Return the 30-second time step whose TOTP code is ``code``, or None.

    The steps before and after ``now`` are accepted too, for one step of clock drift
    between the server and the authenticator app.
    """
    try:
        return totp.verify_and_get_timecode(
            code.strip(), for_time=now, valid_window=TOTP_DRIFT_STEPS
        )
    except OTPVerificationError:
        return None


def _changed_at(account: Account) -> datetime:
    # A re-hash keeps the password, so it keeps its age.
    return account.password_changed_at or account.created_at
