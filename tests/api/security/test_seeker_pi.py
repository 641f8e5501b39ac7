"""Encryption of seekers' personal fields for the store, and their decryption in memory."""

import base64
from pathlib import Path

import pandas as pd
import pytest

from api.security.encryption import DecryptionError, FieldContext, SoftwareKeyProvider
from api.security.seeker_pi import SeekerPiCodec
from matching.seeker_simulation import generate_seekers
from store.seeker_records import (
    ENVELOPE_COLUMNS,
    PLAINTEXT_COLUMNS,
    PlaintextPersonalDataError,
    check_protected,
)

INDEX_KEY = b"i" * 32
PROVIDER = SoftwareKeyProvider({"k1": b"1" * 16}, "k1", INDEX_KEY)


@pytest.fixture(scope="module")
def plaintext(data_dir: Path) -> pd.DataFrame:
    return generate_seekers(data_dir, 150, seed=9)


@pytest.fixture(scope="module")
def stored(plaintext: pd.DataFrame) -> pd.DataFrame:
    return SeekerPiCodec(PROVIDER).protect(plaintext)


def test_protect_drops_plaintext(stored: pd.DataFrame) -> None:
    assert not set(PLAINTEXT_COLUMNS) & set(stored.columns)
    check_protected(stored)


def test_no_cell_holds_plaintext(plaintext: pd.DataFrame, stored: pd.DataFrame) -> None:
    cells = "\n".join(stored.astype(str).to_numpy().ravel())
    for column in ("name", "mobile", "id_number", "home_label"):
        for value in plaintext[column]:
            assert str(value) not in cells, column
    for code in ("disability", "zero_employment_family", "long_term_unemployed"):
        assert code not in cells


def test_home_point_is_area(plaintext: pd.DataFrame, stored: pd.DataFrame) -> None:
    assert stored["home_lon"].tolist() == plaintext["home_area_lon"].tolist()
    assert stored["home_lat"].tolist() == plaintext["home_area_lat"].tolist()


def test_envelopes_use_fresh_nonces(stored: pd.DataFrame) -> None:
    for column in ENVELOPE_COLUMNS:
        assert stored[column].str.startswith("pi1.k1.").all()
        nonces = {base64.urlsafe_b64decode(v.split(".")[2] + "==")[:12] for v in stored[column]}
        assert len(nonces) == len(stored)


def test_blind_indexes_match(plaintext: pd.DataFrame, stored: pd.DataFrame) -> None:
    codec = SeekerPiCodec(PROVIDER)

    assert stored["id_number_index"].iloc[0] == codec.index.id_number(
        plaintext["id_number"].iloc[0]
    )
    assert stored["mobile_index"].iloc[0] == codec.index.mobile(plaintext["mobile"].iloc[0])
    assert stored["id_number_index"].is_unique
    assert stored["mobile_index"].is_unique


def test_exact_homes_in_memory(plaintext: pd.DataFrame, stored: pd.DataFrame) -> None:
    frame = SeekerPiCodec(PROVIDER).with_exact_homes(stored)

    assert frame["home_lon"].tolist() == pytest.approx(plaintext["home_lon"].tolist())
    assert frame["home_lat"].tolist() == pytest.approx(plaintext["home_lat"].tolist())
    assert frame["home_area_lon"].tolist() == plaintext["home_area_lon"].tolist()
    assert "name" not in frame.columns


def test_reveal_round_trip(plaintext: pd.DataFrame, stored: pd.DataFrame) -> None:
    row = stored.iloc[3].to_dict()
    personal = SeekerPiCodec(PROVIDER).reveal(row)

    assert personal.name == plaintext["name"].iloc[3]
    assert personal.mobile == plaintext["mobile"].iloc[3]
    assert personal.id_number == plaintext["id_number"].iloc[3]
    assert personal.hardship_category == plaintext["hardship_category"].iloc[3]
    assert personal.home_label == plaintext["home_label"].iloc[3]


def test_envelope_moved_to_other_row_fails(stored: pd.DataFrame) -> None:
    row = stored.iloc[0].to_dict()
    row["name_enc"] = stored["name_enc"].iloc[1]

    with pytest.raises(DecryptionError, match=r"seekers\.name_enc"):
        SeekerPiCodec(PROVIDER).reveal(row)


def test_reencrypt_under_new_key(stored: pd.DataFrame) -> None:
    old = tuple(stored.loc[0, list(ENVELOPE_COLUMNS)])
    both = SoftwareKeyProvider({"k1": b"1" * 16, "k2": b"2" * 16}, "k2", INDEX_KEY)
    seeker_id = str(stored["seeker_id"].iloc[0])

    new = SeekerPiCodec(both).reencrypt(seeker_id, old)

    assert all(envelope.startswith("pi1.k2.") for envelope in new)
    cipher = SeekerPiCodec(both).cipher
    for column, before, after in zip(ENVELOPE_COLUMNS, old, new, strict=True):
        context = FieldContext("seekers", column, seeker_id)
        assert cipher.decrypt(after, context) == cipher.decrypt(before, context)


def test_writer_rejects_plaintext(plaintext: pd.DataFrame) -> None:
    with pytest.raises(PlaintextPersonalDataError, match="plaintext personal column"):
        check_protected(plaintext)


def test_writer_rejects_home_without_envelope(stored: pd.DataFrame) -> None:
    with pytest.raises(PlaintextPersonalDataError, match="home_enc"):
        check_protected(stored.drop(columns=["home_enc"]))


def test_old_store_without_envelopes_fails(stored: pd.DataFrame) -> None:
    with pytest.raises(PlaintextPersonalDataError, match="doorstep build --force"):
        SeekerPiCodec(PROVIDER).with_exact_homes(stored.drop(columns=["home_enc"]))
