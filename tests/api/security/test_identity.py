"""Login, second factor, lockout, sessions and devices of the identity service."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pyotp
import pytest
import redis
from argon2 import PasswordHasher

from api.identity_setup import sms_limiter
from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher, SoftwareKeyProvider
from api.security.identity import (
    AccountLockedError,
    ChallengeInvalidError,
    CodeExpiredError,
    CodeRateLimitedError,
    DeviceNotBoundError,
    IdentityService,
    LoginFailedError,
    SessionInvalidError,
    WrongCodeError,
)
from api.security.passwords import PasswordPolicyError, check_complexity
from api.security.sms import OutboxSmsGateway
from store.cache import MemoryCache, RedisBreaker, RedisCache, key_prefix
from store.identity import Role, RoleConflictError
from store.rate_limit import MemoryRateLimiter, RedisRateLimiter
from store.sqlite_identity import SqliteIdentity
from tests.fix_redis import REDIS_URL
from tests.store.test_identity_store import TREE

PASSWORD = "Xian-Station-2026"
MOBILE = "13812341234"
DEVICE = "pad-yanta-01"
KEY = b"t" * 32


class Clock:
    """A settable clock for the service."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _service(tmp_path: Path, clock: Clock, limiter: object = None) -> IdentityService:
    store = SqliteIdentity(tmp_path / "identity.sqlite")
    store.seed_organisations(TREE)
    return IdentityService(
        store,
        cipher=FieldCipher(SoftwareKeyProvider({"k1": b"k" * 16}, "k1", b"i" * 32)),
        index=BlindIndex(b"i" * 32),
        gateway=OutboxSmsGateway(tmp_path / "sms_outbox.jsonl"),
        sms_limiter=limiter or MemoryRateLimiter(1, clock=lambda: clock().timestamp()),  # type: ignore[arg-type]
        token_key=KEY,
        clock=clock,
    )


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> IdentityService:
    return _service(tmp_path, clock)


def _staff(service: IdentityService, factor: str = "sms") -> str:
    created = service.create_staff(
        login="zhang.wei", name="张伟", mobile=MOBILE, org_id="district:610113",
        roles=[Role.STATION_STAFF], password=PASSWORD, second_factor=factor,  # type: ignore[arg-type]
    )  # fmt: skip
    service.store.bind_device(created.account.account_id, DEVICE, "雁塔平板", service.clock())
    return created.account.account_id


def test_staff_account_rejects_seeker_role(service: IdentityService) -> None:
    with pytest.raises(RoleConflictError, match="seeker"):
        service.create_staff(
            login="li.na", name="李娜", mobile=MOBILE, org_id="district:610113",
            roles=[Role.SEEKER], password=PASSWORD,
        )  # fmt: skip
    assert service.store.account_by_login("li.na") is None


def _last_code(service: IdentityService) -> str:
    gateway = service.gateway
    assert isinstance(gateway, OutboxSmsGateway)
    match = re.search(r"验证码 (\d{6})", gateway.messages()[-1]["text"])
    assert match is not None
    return match.group(1)


def _login(service: IdentityService) -> str:
    challenge = service.start_staff_login("zhang.wei", PASSWORD)
    return service.finish_staff_login(challenge.token, _last_code(service), DEVICE).token


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Ab1!", "length"),
        ("alllowercase123", "character_classes"),
        ("Zhang.Wei-2026x", "contains_login"),
        ("x" * 129, "length"),
    ],
)
def test_complexity_rule(password: str, rule: str) -> None:
    with pytest.raises(PasswordPolicyError) as caught:
        check_complexity(password, login="zhang.wei")
    assert caught.value.rule == rule
    assert password not in str(caught.value)


def test_name_stored_encrypted(service: IdentityService) -> None:
    account_id = _staff(service)
    account = service.store.account(account_id)
    assert account is not None
    assert "张伟" not in account.name_enc
    assert MOBILE not in account.mobile_enc
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert service.decrypt_name(account) == "张伟"


def test_sms_login_opens_session(service: IdentityService) -> None:
    account_id = _staff(service)
    token = _login(service)
    principal = service.authenticate(token, "staff", DEVICE)
    assert principal.account.account_id == account_id
    assert principal.roles == {Role.STATION_STAFF}
    assert not principal.password_change_required


def test_token_pins_algorithm_and_audience(service: IdentityService) -> None:
    _staff(service)
    token = _login(service)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged_none = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(SessionInvalidError):
        service.authenticate(forged_none, "staff", DEVICE)
    with pytest.raises(SessionInvalidError):
        service.authenticate(token, "seeker", DEVICE)
    wrong_key = jwt.encode(claims, b"w" * 32, algorithm="HS256")
    with pytest.raises(SessionInvalidError):
        service.authenticate(wrong_key, "staff", DEVICE)


def test_code_single_use(service: IdentityService) -> None:
    _staff(service)
    challenge = service.start_staff_login("zhang.wei", PASSWORD)
    code = _last_code(service)
    service.finish_staff_login(challenge.token, code, DEVICE)
    with pytest.raises(WrongCodeError):
        service.finish_staff_login(challenge.token, code, DEVICE)


def test_code_expires_after_5_minutes(service: IdentityService, clock: Clock) -> None:
    _staff(service)
    challenge = service.start_staff_login("zhang.wei", PASSWORD)
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(CodeExpiredError) as raised:
        service.finish_staff_login(challenge.token, _last_code(service), DEVICE)
    assert raised.value.message_zh == "验证码已过期，请重新输入密码以获取新的验证码"


def test_wrong_code_differs_from_password(service: IdentityService) -> None:
    _staff(service)
    with pytest.raises(LoginFailedError) as wrong_password:
        service.start_staff_login("zhang.wei", "Wrong-Password-1")
    assert type(wrong_password.value) is LoginFailedError
    assert wrong_password.value.message_zh == "账号或密码错误"

    challenge = service.start_staff_login("zhang.wei", PASSWORD)
    with pytest.raises(WrongCodeError) as wrong_code:
        service.finish_staff_login(challenge.token, "000000", DEVICE)
    assert wrong_code.value.message_zh == "验证码错误，请核对后重新输入"


def test_forged_challenge_rejected(service: IdentityService) -> None:
    _staff(service)
    with pytest.raises(ChallengeInvalidError):
        service.finish_staff_login("not-a-jwt", "123456", DEVICE)


def test_totp_second_factor(service: IdentityService) -> None:
    created = service.create_staff(
        login="li.na", name="李娜", mobile="13912345678", org_id="district:610113",
        roles=[Role.ANALYST], password=PASSWORD, second_factor="totp",
    )  # fmt: skip
    assert created.totp_secret is not None
    service.store.bind_device(created.account.account_id, DEVICE, "pc", service.clock())
    challenge = service.start_staff_login("li.na", PASSWORD)
    assert challenge.second_factor == "totp"
    with pytest.raises(LoginFailedError):
        service.finish_staff_login(challenge.token, "000000", DEVICE)
    code = pyotp.TOTP(created.totp_secret).at(service.clock())
    assert service.finish_staff_login(challenge.token, code, DEVICE).token


def _totp_staff(service: IdentityService) -> str:
    created = service.create_staff(
        login="li.na", name="李娜", mobile="13912345678", org_id="district:610113",
        roles=[Role.ANALYST], password=PASSWORD, second_factor="totp",
    )  # fmt: skip
    assert created.totp_secret is not None
    service.store.bind_device(created.account.account_id, DEVICE, "pc", service.clock())
    return created.totp_secret


def test_totp_code_works_once(service: IdentityService, clock: Clock) -> None:
    secret = _totp_staff(service)
    code = pyotp.TOTP(secret).at(clock())
    first = service.start_staff_login("li.na", PASSWORD)
    assert service.finish_staff_login(first.token, code, DEVICE).token

    clock.advance(seconds=5)  # still the same 30-second step
    second = service.start_staff_login("li.na", PASSWORD)
    with pytest.raises(WrongCodeError):
        service.finish_staff_login(second.token, code, DEVICE)


def test_totp_replay_in_drift_window(service: IdentityService, clock: Clock) -> None:
    secret = _totp_staff(service)
    code = pyotp.TOTP(secret).at(clock())
    first = service.start_staff_login("li.na", PASSWORD)
    assert service.finish_staff_login(first.token, code, DEVICE).token

    # 30 s later the same code is the previous step, which clock drift would still accept.
    clock.advance(seconds=30)
    second = service.start_staff_login("li.na", PASSWORD)
    with pytest.raises(WrongCodeError):
        service.finish_staff_login(second.token, code, DEVICE)
    assert service.finish_staff_login(second.token, pyotp.TOTP(secret).at(clock()), DEVICE)


def test_older_totp_code_after_newer(service: IdentityService, clock: Clock) -> None:
    secret = _totp_staff(service)
    totp = pyotp.TOTP(secret)
    first = service.start_staff_login("li.na", PASSWORD)
    # The next step's code, accepted for clock drift, is used first.
    assert service.finish_staff_login(first.token, totp.at(clock(), counter_offset=1), DEVICE).token

    second = service.start_staff_login("li.na", PASSWORD)
    with pytest.raises(WrongCodeError):
        service.finish_staff_login(second.token, totp.at(clock()), DEVICE)


def test_totp_outside_drift_window(service: IdentityService, clock: Clock) -> None:
    secret = _totp_staff(service)
    challenge = service.start_staff_login("li.na", PASSWORD)

    with pytest.raises(WrongCodeError):
        service.finish_staff_login(
            challenge.token, pyotp.TOTP(secret).at(clock(), counter_offset=-2), DEVICE
        )


def test_lockout_after_5_failures(service: IdentityService, clock: Clock) -> None:
    _staff(service)
    for _ in range(4):
        with pytest.raises(LoginFailedError):
            service.start_staff_login("zhang.wei", "Wrong-Password-1")
        clock.advance(minutes=2)
    with pytest.raises(AccountLockedError) as locking:
        service.start_staff_login("zhang.wei", "Wrong-Password-1")
    assert locking.value.retry_after_s == 30 * 60
    assert locking.value.message_zh == "账号已锁定，请在 30 分钟后重试"
    # The right password does not help while locked.
    clock.advance(minutes=29)
    with pytest.raises(AccountLockedError) as still_locked:
        service.start_staff_login("zhang.wei", PASSWORD)
    assert still_locked.value.retry_after_s == 60
    assert still_locked.value.message_zh == "账号已锁定，请在 1 分钟后重试"
    clock.advance(minutes=1, seconds=1)
    service.sms_limiter = MemoryRateLimiter(1, clock=lambda: clock().timestamp())
    assert service.start_staff_login("zhang.wei", PASSWORD).token


def test_lock_revokes_sessions_at_once(service: IdentityService, clock: Clock) -> None:
    account_id = _staff(service)
    token = _login(service)
    service.lock(account_id, clock() + timedelta(hours=1))
    with pytest.raises(SessionInvalidError):
        service.authenticate(token, "staff", DEVICE)


def test_logout_revokes_at_once(service: IdentityService) -> None:
    _staff(service)
    token = _login(service)
    principal = service.authenticate(token, "staff", DEVICE)
    assert service.logout(principal.session.session_id)
    with pytest.raises(SessionInvalidError):
        service.authenticate(token, "staff", DEVICE)


def test_idle_timeout_30_minutes(service: IdentityService, clock: Clock) -> None:
    _staff(service)
    token = _login(service)
    clock.advance(minutes=29)
    service.authenticate(token, "staff", DEVICE)
    clock.advance(minutes=29)
    service.authenticate(token, "staff", DEVICE)
    clock.advance(minutes=30, seconds=1)
    with pytest.raises(SessionInvalidError):
        service.authenticate(token, "staff", DEVICE)


def test_device_must_be_bound(service: IdentityService, clock: Clock) -> None:
    account_id = _staff(service)
    challenge = service.start_staff_login("zhang.wei", PASSWORD)
    with pytest.raises(DeviceNotBoundError):
        service.finish_staff_login(challenge.token, _last_code(service), "unknown-phone")

    token = _login_again(service, clock)
    with pytest.raises(DeviceNotBoundError):
        service.authenticate(token, "staff", None)
    with pytest.raises(DeviceNotBoundError):
        service.authenticate(token, "staff", "other-device")
    service.store.unbind_device(account_id, DEVICE, clock())
    with pytest.raises(DeviceNotBoundError):
        service.authenticate(token, "staff", DEVICE)


def _login_again(service: IdentityService, clock: Clock) -> str:
    clock.advance(minutes=1)
    return _login(service)


def test_password_age_90_days(service: IdentityService, clock: Clock) -> None:
    account_id = _staff(service)
    clock.advance(days=90)
    service.sms_limiter = MemoryRateLimiter(1, clock=lambda: clock().timestamp())
    token = _login(service)
    principal = service.authenticate(token, "staff", DEVICE)
    assert principal.password_change_required
    service.change_password(principal.account, PASSWORD, "New-Station-2027")
    assert not service.authenticate(token, "staff", DEVICE).password_change_required
    account = service.store.account(account_id)
    assert account is not None
    with pytest.raises(PasswordPolicyError):
        service.change_password(account, "New-Station-2027", "New-Station-2027")


def test_seeker_sms_login(service: IdentityService) -> None:
    service.request_seeker_code(MOBILE)
    issued = service.finish_seeker_login(MOBILE, _last_code(service))
    principal = service.authenticate(issued.token, "seeker", None)
    assert principal.roles == {Role.SEEKER}
    with pytest.raises(SessionInvalidError):
        service.authenticate(issued.token, "staff", DEVICE)


def test_sms_rate_limit_in_process(service: IdentityService) -> None:
    outcomes = []
    for _ in range(100):
        try:
            service.request_seeker_code(MOBILE)
            outcomes.append("sent")
        except CodeRateLimitedError as err:
            assert err.retry_after_s >= 1
            outcomes.append("429")
    assert outcomes.count("sent") == 1
    assert outcomes.count("429") == 99
    gateway = service.gateway
    assert isinstance(gateway, OutboxSmsGateway)
    assert len(gateway.messages()) == 1


@pytest.fixture
def live_redis(admin: redis.Redis, namespace: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    yield client
    client.close()


def test_sms_rate_limit_in_redis(
    tmp_path: Path, clock: Clock, live_redis: redis.Redis, namespace: str
) -> None:
    limiter = RedisRateLimiter(
        live_redis, RedisBreaker(5), 1, prefix=f"{key_prefix(namespace)}sms:",
        clock=lambda: clock().timestamp(),
    )  # fmt: skip
    services = [_service(tmp_path / str(i), clock, limiter) for i in range(2)]
    sent = 0
    for attempt in range(100):
        try:
            services[attempt % 2].request_seeker_code(MOBILE)
            sent += 1
        except CodeRateLimitedError:
            pass
    # Two service processes share the Redis counter, so only one SMS leaves.
    assert sent == 1


def test_sms_interval_spans_minute_boundary(tmp_path: Path, clock: Clock) -> None:
    """A second code one second later, across a calendar-minute boundary, is still rejected."""
    clock.now = datetime(2026, 12, 4, 9, 0, 59, 500_000, tzinfo=UTC)
    limiter = sms_limiter(MemoryCache(60), clock=lambda: clock().timestamp())
    service = _service(tmp_path, clock, limiter)
    service.request_seeker_code(MOBILE)

    clock.advance(seconds=1)
    with pytest.raises(CodeRateLimitedError) as limited:
        service.request_seeker_code(MOBILE)

    assert limited.value.retry_after_s == 59
    clock.advance(seconds=59)
    service.request_seeker_code(MOBILE)


def test_sms_interval_in_redis(
    tmp_path: Path, clock: Clock, live_redis: redis.Redis, namespace: str
) -> None:
    cache = RedisCache(live_redis, RedisBreaker(5), 60, prefix=key_prefix(namespace))
    service = _service(tmp_path, clock, sms_limiter(cache))
    service.request_seeker_code(MOBILE)

    with pytest.raises(CodeRateLimitedError) as limited:
        service.request_seeker_code(MOBILE)

    assert 58 <= limited.value.retry_after_s <= 60
    keys = list(live_redis.scan_iter(match=f"{key_prefix(namespace)}sms:interval:*"))
    assert len(keys) == 1
    assert 0 < live_redis.pttl(keys[0]) <= 60_000


def test_unknown_login_hashes_too(
    service: IdentityService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown login costs one argon2 verification, so timing does not reveal accounts."""
    _staff(service)
    calls: list[str] = []
    original = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, password_hash: str, password: str) -> bool:
        calls.append(password)
        return original(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    with pytest.raises(LoginFailedError) as unknown:
        service.start_staff_login("nobody.here", "Wrong-Password-1")
    with pytest.raises(LoginFailedError) as known:
        service.start_staff_login("zhang.wei", "Wrong-Password-1")

    assert calls == ["Wrong-Password-1", "Wrong-Password-1"]
    assert str(unknown.value) == str(known.value)
