"""SM4-GCM envelopes, key providers, the HMAC-SM3 blind index, masking and key settings."""

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from api.security.blind_index import BlindIndex
from api.security.encryption import (
    NONCE_BYTES,
    DecryptionError,
    FieldCipher,
    FieldContext,
    SoftwareKeyProvider,
    UnknownKeyError,
)
from api.security.keys import load_key_material, parse_key_list
from api.security.masking import generalise_home, mask_id_number, mask_mobile, mask_name
from api.security.validation import PersonalFieldError, id_check_character
from api.settings import AuthSettings, ModelSettings, PrivacySettings, Settings
from geo.regions import Regions, load_regions
from tests.api.staff_login import PRODUCTION_SMS

KEY_1 = bytes(range(16))
KEY_2 = bytes(range(16, 32))
INDEX_KEY = b"i" * 32
CONTEXT = FieldContext("seekers", "mobile", "sim-000001")
# A made-up number of region 610103 (西安市碑林区) with its computed check character.
ID_NUMBER = "61010319900307123" + id_check_character("61010319900307123")


def _cipher(active: str = "k1") -> FieldCipher:
    return FieldCipher(SoftwareKeyProvider({"k1": KEY_1, "k2": KEY_2}, active, INDEX_KEY))


def _payload(envelope: str) -> bytes:
    encoded = envelope.split(".", 2)[2]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def _with_payload(envelope: str, payload: bytes) -> str:
    head = envelope.rsplit(".", 1)[0]
    return f"{head}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}"


def test_round_trip() -> None:
    cipher = _cipher()
    envelope = cipher.encrypt("13812341234", CONTEXT)
    assert envelope.startswith("pi1.k1.")
    assert "13812341234" not in envelope
    assert cipher.decrypt(envelope, CONTEXT) == "13812341234"


def test_round_trip_chinese_text() -> None:
    cipher = _cipher()
    context = FieldContext("seekers", "name", "sim-000002")
    assert cipher.decrypt(cipher.encrypt("欧阳娜娜", context), context) == "欧阳娜娜"


def test_nonces_are_unique() -> None:
    cipher = _cipher()
    nonces = {_payload(cipher.encrypt("same", CONTEXT))[:NONCE_BYTES] for _ in range(2_000)}
    assert len(nonces) == 2_000


def test_same_value_encrypts_differently() -> None:
    cipher = _cipher()
    assert cipher.encrypt("same", CONTEXT) != cipher.encrypt("same", CONTEXT)


@pytest.mark.parametrize("position", [NONCE_BYTES, NONCE_BYTES + 3, -1, 0])
def test_flipped_byte_fails(position: int) -> None:
    cipher = _cipher()
    envelope = cipher.encrypt("13812341234", CONTEXT)
    payload = bytearray(_payload(envelope))
    payload[position] ^= 0x01
    with pytest.raises(DecryptionError):
        cipher.decrypt(_with_payload(envelope, bytes(payload)), CONTEXT)


@pytest.mark.parametrize(
    "other",
    [
        FieldContext("seekers", "mobile", "sim-000002"),
        FieldContext("seekers", "id_number", "sim-000001"),
        FieldContext("staff", "mobile", "sim-000001"),
    ],
)
def test_wrong_associated_data_fails(other: FieldContext) -> None:
    cipher = _cipher()
    envelope = cipher.encrypt("13812341234", CONTEXT)
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(envelope, other)
    assert "13812341234" not in str(caught.value)


def test_relabelled_key_id_fails() -> None:
    cipher = _cipher()
    envelope = cipher.encrypt("13812341234", CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(envelope.replace("pi1.k1.", "pi1.k2.", 1), CONTEXT)


@pytest.mark.parametrize("envelope", ["", "pi1.k1", "pi2.k1.AAAA", "pi1.k1.AAAA", "pi1.k!.AAAA"])
def test_malformed_envelope_fails(envelope: str) -> None:
    with pytest.raises(DecryptionError):
        _cipher().decrypt(envelope, CONTEXT)


def test_rotation_keeps_old_key_readable() -> None:
    old = _cipher("k1").encrypt("13812341234", CONTEXT)
    rotated = _cipher("k2")
    assert rotated.needs_rotation(old)
    assert rotated.decrypt(old, CONTEXT) == "13812341234"
    fresh = rotated.encrypt("13812341234", CONTEXT)
    assert fresh.startswith("pi1.k2.")
    assert not rotated.needs_rotation(fresh)


def test_retired_key_is_unknown() -> None:
    envelope = _cipher("k1").encrypt("13812341234", CONTEXT)
    only_new = FieldCipher(SoftwareKeyProvider({"k2": KEY_2}, "k2", INDEX_KEY))
    with pytest.raises(UnknownKeyError):
        only_new.decrypt(envelope, CONTEXT)


@pytest.mark.parametrize("key", [b"short", bytes(17)])
def test_provider_rejects_wrong_key_size(key: bytes) -> None:
    with pytest.raises(ValueError, match="expected 16"):
        SoftwareKeyProvider({"k1": key}, "k1", INDEX_KEY)


def test_provider_rejects_unknown_active() -> None:
    with pytest.raises(ValueError, match="active key id"):
        SoftwareKeyProvider({"k1": KEY_1}, "k9", INDEX_KEY)


def test_blind_index_deterministic() -> None:
    index = BlindIndex(INDEX_KEY)
    first = index.mobile("13812341234")
    assert first == index.mobile("+86 138-1234-1234")
    assert len(first) == 64
    assert "13812341234" not in first


def test_blind_index_normalises_legacy_id() -> None:
    index = BlindIndex(INDEX_KEY)
    assert index.id_number("610103900307123") == index.id_number(ID_NUMBER)


def test_blind_index_separates_kinds_and_keys() -> None:
    index = BlindIndex(INDEX_KEY)
    assert index.digest("mobile", "13812341234") != index.digest("id_number", "13812341234")
    assert BlindIndex(b"j" * 32).mobile("13812341234") != index.mobile("13812341234")
    assert index.mobile("13812341234") != index.mobile("13812341235")


def test_blind_index_rejects_invalid_value() -> None:
    with pytest.raises(PersonalFieldError):
        BlindIndex(INDEX_KEY).id_number(ID_NUMBER[:17] + ("1" if ID_NUMBER[17] == "0" else "0"))


def test_blind_index_rejects_short_key() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        BlindIndex(b"k" * 31)


def test_masks() -> None:
    assert mask_id_number("610103199003071233") == "610103********1233"
    assert mask_mobile("13812341234") == "138****1234"
    assert mask_name("张三") == "张*"
    assert mask_name("张三丰") == "张**"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "*"


def test_masks_hide_unexpected_shapes() -> None:
    assert mask_id_number("6101031990") == "*" * 10
    assert mask_mobile("1381234") == "*" * 7


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


def test_home_generalised_to_community(regions: Regions) -> None:
    community = regions.communities.iloc[0]
    location = generalise_home(str(community["code"]), regions)
    assert location is not None
    assert location.community_name == community["name"]
    assert location.district_name is not None
    assert location.label().endswith(str(community["name"]))


def test_unknown_community_gives_none(regions: Regions) -> None:
    assert generalise_home("000000000000", regions) is None


def test_key_list_parsed_in_order() -> None:
    text = f"k2:{base64.b64encode(KEY_2).decode()},k1:{base64.b64encode(KEY_1).decode()}"
    assert list(parse_key_list(text)) == ["k2", "k1"]


def test_key_list_error_hides_key() -> None:
    with pytest.raises(ValueError) as caught:
        parse_key_list("k1:not*base64")
    assert "not*base64" not in str(caught.value)


def test_development_keys_created_once(tmp_path: Path) -> None:
    path = tmp_path / "pi_keys.json"
    settings = Settings(privacy=PrivacySettings(pi_key_path=path))
    first = load_key_material(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = load_key_material(settings)
    assert first.audit_key == second.audit_key
    assert first.provider.encryption_key("dev1") == second.provider.encryption_key("dev1")


def _production(**privacy: object) -> Settings:
    return Settings(
        auth=AuthSettings(
            environment="production",
            staff_token_secret=SecretStr("s" * 8 + "abcdefgh" * 4),
            **PRODUCTION_SMS,  # type: ignore[arg-type]
        ),
        model=ModelSettings(model_key=SecretStr("m" * 40)),
        privacy=PrivacySettings(**privacy),  # type: ignore[arg-type]
    )


def test_production_rejects_missing_keys() -> None:
    with pytest.raises(ValidationError, match="DOORSTEP_PI_KEYS is missing"):
        _production()


def test_production_rejects_short_audit_key() -> None:
    keys = SecretStr(f"k1:{base64.b64encode(KEY_1).decode()}")
    with pytest.raises(ValidationError, match="DOORSTEP_AUDIT_KEY has 5 bytes"):
        _production(pi_keys=keys, pi_index_key=SecretStr("x" * 32), audit_key=SecretStr("short"))


def test_production_accepts_full_keys(tmp_path: Path) -> None:
    settings = _production(
        pi_keys=SecretStr(f"k1:{base64.b64encode(KEY_1).decode()}"),
        pi_index_key=SecretStr("x" * 32),
        audit_key=SecretStr("y" * 32),
        pi_key_path=tmp_path / "never.json",
    )
    material = load_key_material(settings)
    assert material.provider.active_key_id() == "k1"
    assert not (tmp_path / "never.json").exists()
