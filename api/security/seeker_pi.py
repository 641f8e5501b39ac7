"""Seekers' personal fields: encryption for the store, decryption in memory, re-encryption.

:meth:`SeekerPiCodec.protect` turns the simulation's plaintext frame into the stored
form of :mod:`store.seeker_records`: one SM4-GCM envelope per personal field and row
(a fresh nonce each, bound to the seeker id and column), blind indexes of the ID
number and the mobile, and the street office point in ``home_lon``/``home_lat``.
:meth:`SeekerPiCodec.with_exact_homes` decrypts only the exact homes, in process
memory, for matching. :meth:`SeekerPiCodec.reveal` decrypts one seeker for an
authorised response.
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher, FieldContext, KeyProvider
from api.security.keys import load_key_material
from api.settings import Settings
from store.seeker_records import ENVELOPE_COLUMNS, PLAINTEXT_COLUMNS, PlaintextPersonalDataError

logger = logging.getLogger(__name__)

TABLE = "seekers"


@dataclass(frozen=True, slots=True)
class SeekerPersonal:
    """The decrypted personal fields of one seeker; never logged, never cached."""

    name: str
    mobile: str
    id_number: str
    hardship_category: str
    """A code of :data:`matching.seeker_personal.HARDSHIP_CATEGORIES`, or "" for none."""
    home_lon: float
    home_lat: float
    home_label: str


class SeekerPiCodec:
    """Encrypt, index and decrypt seekers' personal fields with one key provider."""

    def __init__(self, provider: KeyProvider) -> None:
        self.cipher = FieldCipher(provider)
        self.index = BlindIndex(provider.index_key())

    @property
    def active_key_id(self) -> str:
        """Id of the key that encrypts new values."""
        return self.cipher.provider.active_key_id()

    def protect(self, seekers: pd.DataFrame) -> pd.DataFrame:
        """Return ``seekers`` in the stored form: envelopes and blind indexes, no plaintext.

        ``seekers`` has the columns of :func:`matching.seeker_simulation.generate_seekers`.
        """
        stored = seekers.drop(columns=[c for c in PLAINTEXT_COLUMNS if c in seekers.columns])
        stored["home_lon"] = seekers["home_area_lon"].to_numpy()
        stored["home_lat"] = seekers["home_area_lat"].to_numpy()
        homes = seekers[["home_lon", "home_lat", "home_label", "university"]]
        values: dict[str, list[str]] = {
            "name_enc": seekers["name"].astype(str).tolist(),
            "mobile_enc": seekers["mobile"].astype(str).tolist(),
            "id_number_enc": seekers["id_number"].astype(str).tolist(),
            "hardship_enc": seekers["hardship_category"].astype(str).tolist(),
            "home_enc": [_home_json(*home) for home in homes.itertuples(index=False)],
        }
        ids = seekers["seeker_id"].astype(str).tolist()
        for column, plaintexts in values.items():
            stored[column] = [
                self.cipher.encrypt(text, FieldContext(TABLE, column, seeker_id))
                for text, seeker_id in zip(plaintexts, ids, strict=True)
            ]
        stored["id_number_index"] = [self.index.id_number(v) for v in seekers["id_number"]]
        stored["mobile_index"] = [self.index.mobile(v) for v in seekers["mobile"]]
        logger.info("encrypted the personal fields of %d seekers", len(stored))
        return stored

    def with_exact_homes(self, stored: pd.DataFrame) -> pd.DataFrame:
        """Return a copy with the exact homes decrypted, for matching in process memory.

        ``home_lon``/``home_lat`` become the exact home (WGS84 degrees) and the stored
        street office point moves to ``home_area_lon``/``home_area_lat``. The name,
        mobile, ID number and hardship category stay encrypted.

        A frame with neither ``home_enc`` nor ``home_lon`` holds no homes and is
        returned unchanged.

        Raises
        ------
        PlaintextPersonalDataError
            The frame has ``home_lon`` but no ``home_enc``: the store predates encryption.
        """
        if "home_enc" not in stored.columns and "home_lon" not in stored.columns:
            return stored
        if "home_enc" not in stored.columns:
            raise PlaintextPersonalDataError(
                "the stored seekers have no encrypted home (column home_enc); the store"
                " predates personal-field encryption, rebuild it with `doorstep build --force`"
            )
        homes = [
            json.loads(self.cipher.decrypt(envelope, FieldContext(TABLE, "home_enc", seeker_id)))
            for envelope, seeker_id in zip(stored["home_enc"], stored["seeker_id"], strict=True)
        ]
        frame = stored.copy()
        frame["home_area_lon"] = stored["home_lon"]
        frame["home_area_lat"] = stored["home_lat"]
        frame["home_lon"] = [float(home["lon"]) for home in homes]
        frame["home_lat"] = [float(home["lat"]) for home in homes]
        return frame

    def reveal(self, row: Mapping[str, Any]) -> SeekerPersonal:
        """Decrypt every personal field of one stored seeker row."""
        seeker_id = str(row["seeker_id"])

        def field(column: str) -> str:
            return self.cipher.decrypt(str(row[column]), FieldContext(TABLE, column, seeker_id))

        home = json.loads(field("home_enc"))
        return SeekerPersonal(
            name=field("name_enc"),
            mobile=field("mobile_enc"),
            id_number=field("id_number_enc"),
            hardship_category=field("hardship_enc"),
            home_lon=float(home["lon"]),
            home_lat=float(home["lat"]),
            home_label=str(home["label"]),
        )

    def reencrypt(self, seeker_id: str, envelopes: tuple[str, ...]) -> tuple[str, ...]:
        """Return the envelopes of one row decrypted and encrypted again under the active key."""
        result = []
        for column, envelope in zip(ENVELOPE_COLUMNS, envelopes, strict=True):
            context = FieldContext(TABLE, column, seeker_id)
            result.append(self.cipher.encrypt(self.cipher.decrypt(envelope, context), context))
        return tuple(result)


def _home_json(lon: object, lat: object, label: object, campus: object) -> str:
    home = {
        "lon": float(str(lon)),
        "lat": float(str(lat)),
        "label": str(label),
        "university": str(campus),
    }
    return json.dumps(home, ensure_ascii=False, separators=(",", ":"))


def seeker_codec(settings: Settings) -> SeekerPiCodec:
    """Return the codec of the configured keys (the development key file when unset)."""
    return SeekerPiCodec(load_key_material(settings).provider)
