"""Key material from settings: SM4 data keys, the blind-index key and the audit-chain key.

In production every key comes from ``DOORSTEP_*`` settings (checked by
:class:`api.settings.Settings`). In development an unset key is taken from the
file ``DOORSTEP_PI_KEY_PATH``, which is generated once with mode 0600, so the
service and the command line on one machine use the same keys. Keys are never
logged.
"""

import base64
import binascii
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from api.security.encryption import SM4_KEY_BYTES, SoftwareKeyProvider
from api.settings import MIN_HMAC_KEY_BYTES, Settings
from store.audit_keys import AuditKeyring

logger = logging.getLogger(__name__)

DEVELOPMENT_KEY_ID = "dev1"

_file_lock = threading.Lock()


@dataclass(frozen=True)
class KeyMaterial:
    """The key provider of personal fields and the separate audit-chain keys."""

    provider: SoftwareKeyProvider
    audit_key: bytes
    """The active audit-chain key, which tags new records."""
    audit_key_id: str = "audit1"
    retired_audit_keys: dict[str, bytes] = field(default_factory=dict)
    """Earlier audit-chain keys by id, for verifying the older epochs of the chain."""

    def audit_keyring(self) -> AuditKeyring:
        """Return the active and retired audit keys as one keyring."""
        return AuditKeyring(
            self.audit_key_id, {**self.retired_audit_keys, self.audit_key_id: self.audit_key}
        )


def parse_key_list(text: str) -> dict[str, bytes]:
    """Parse ``KEY_ID:BASE64,KEY_ID:BASE64`` into key ids and key bytes, in the given order.

    Errors name the entry by position and key id, never the key.
    """
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(text.split(","), start=1):
        key_id, separator, encoded = entry.strip().partition(":")
        if not separator or not key_id:
            raise ValueError(
                f"DOORSTEP_PI_KEYS entry {position} is invalid; expected KEY_ID:BASE64"
            )
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except binascii.Error as err:
            raise ValueError(
                f"DOORSTEP_PI_KEYS entry {position} ({key_id!r}) is not valid base64"
            ) from err
    return keys


def load_key_material(settings: Settings) -> KeyMaterial:
    """Return the configured keys; unset keys come from the development key file.

    Raises
    ------
    ValueError
        A configured key is malformed or too short, or a key is missing in production.
    """
    privacy = settings.privacy
    production = settings.auth.environment == "production"
    generated = {} if production else _development_keys(privacy.pi_key_path)
    if production and (privacy.pi_keys is None or privacy.pi_index_key is None):
        # Settings already rejects this; checked again so no key is ever generated here.
        raise ValueError("DOORSTEP_PI_KEYS and DOORSTEP_PI_INDEX_KEY are required in production")

    if privacy.pi_keys is not None:
        keys = parse_key_list(privacy.pi_keys.get_secret_value())
    else:
        keys = {DEVELOPMENT_KEY_ID: base64.b64decode(generated["encryption"])}
    active = privacy.pi_active_key or next(iter(keys))
    index_key = _secret_or(privacy.pi_index_key, generated, "index")
    audit_key = _secret_or(privacy.audit_key, generated, "audit")
    for name, key in (("DOORSTEP_PI_INDEX_KEY", index_key), ("DOORSTEP_AUDIT_KEY", audit_key)):
        if len(key) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"{name} has {len(key)} bytes; expected at least {MIN_HMAC_KEY_BYTES}")
    retired = (
        {}
        if privacy.audit_retired_keys is None
        else parse_audit_keys(privacy.audit_retired_keys.get_secret_value())
    )
    return KeyMaterial(
        SoftwareKeyProvider(keys, active, index_key), audit_key, privacy.audit_key_id, retired
    )


def parse_audit_keys(text: str) -> dict[str, bytes]:
    """Parse ``ID:KEY,ID:KEY`` (keys as text, like DOORSTEP_AUDIT_KEY) into ids and key bytes.

    Errors name the entry by position and key id, never the key.
    """
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(text.split(","), start=1):
        key_id, separator, key = entry.strip().partition(":")
        if not separator or not key_id or not key:
            raise ValueError(
                f"DOORSTEP_AUDIT_RETIRED_KEYS entry {position} is invalid; expected ID:KEY"
            )
        if len(key.encode()) < MIN_HMAC_KEY_BYTES:
            raise ValueError(
                f"DOORSTEP_AUDIT_RETIRED_KEYS entry {position} ({key_id!r}) has"
                f" {len(key.encode())} bytes; expected at least {MIN_HMAC_KEY_BYTES}"
            )
        keys[key_id] = key.encode()
    return keys


def _secret_or(secret: SecretStr | None, generated: dict[str, str], name: str) -> bytes:
    if secret is not None:
        return secret.get_secret_value().encode()
    if name not in generated:
        raise ValueError(f"the {name} key is missing in production")
    return base64.b64decode(generated[name])


def _development_keys(path: Path) -> dict[str, str]:
    """Read the development key file, creating it with fresh random keys (mode 0600) if missing."""
    with _file_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            loaded: dict[str, str] = json.loads(path.read_text())
            return loaded
        keys = {
            "encryption": base64.b64encode(secrets.token_bytes(SM4_KEY_BYTES)).decode(),
            "index": base64.b64encode(secrets.token_bytes(MIN_HMAC_KEY_BYTES)).decode(),
            "audit": base64.b64encode(secrets.token_bytes(MIN_HMAC_KEY_BYTES)).decode(),
        }
        with os.fdopen(descriptor, "w") as handle:
            json.dump(keys, handle)
        logger.info("created development key file %s (mode 0600)", path)
        return keys
