"""Tests of the basemap tile sources: presets, settings checks and the CSP image source."""

from typing import Literal

import pytest
from pydantic import SecretStr, ValidationError

from api.middleware import content_security_policy
from api.settings import ServerSettings
from api.tiles import AMAP_URL, TIANDITU_URL, tile_source


def test_default_is_no_tiles() -> None:
    tiles = tile_source(ServerSettings())
    assert tiles.url == ""
    assert tiles.coord_sys == "wgs84"
    assert tiles.csp_origin is None


def test_tile_url_alone_means_url_source() -> None:
    server = ServerSettings(tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    tiles = tile_source(server)
    assert tiles.url == server.tile_url
    assert tiles.csp_origin == "https://*.tile.example.org"


def test_tianditu_uses_key_and_wgs84() -> None:
    server = ServerSettings(tile_source="tianditu", tianditu_key=SecretStr("ab c&d"))
    tiles = tile_source(server)
    assert tiles.url == TIANDITU_URL + "ab%20c%26d"
    assert "{z}" in tiles.url
    assert tiles.coord_sys == "wgs84"
    assert tiles.subdomains == "01234567"
    assert tiles.csp_origin == "https://*.tianditu.gov.cn"


def test_amap_uses_gcj02() -> None:
    tiles = tile_source(ServerSettings(tile_source="amap", tile_coord_sys="wgs84"))
    assert tiles.url == AMAP_URL
    assert tiles.coord_sys == "gcj02"
    assert tiles.subdomains == "1234"


@pytest.mark.parametrize(
    ("kind", "origin"),
    [("amap", "https://*.is.autonavi.com"), ("tianditu", "https://*.tianditu.gov.cn")],
)
def test_preset_host_allowed_for_images(kind: Literal["amap", "tianditu"], origin: str) -> None:
    server = ServerSettings(tile_source=kind, tianditu_key=SecretStr("k"))
    policy = content_security_policy(server)
    assert f"img-src 'self' data: {origin};" in policy
    assert "connect-src 'self'" in policy


def test_tianditu_without_key_rejected() -> None:
    with pytest.raises(ValidationError, match="DOORSTEP_TIANDITU_KEY is missing"):
        ServerSettings(tile_source="tianditu")


def test_url_source_without_url_rejected() -> None:
    with pytest.raises(ValidationError, match="DOORSTEP_TILE_URL is empty"):
        ServerSettings(tile_source="url")


@pytest.mark.parametrize("kind", ["none", "amap", "tianditu"])
def test_preset_with_tile_url_rejected(kind: Literal["none", "amap", "tianditu"]) -> None:
    with pytest.raises(ValidationError, match=f"tile_source is {kind}"):
        ServerSettings(
            tile_source=kind, tile_url="https://t.example.org/{z}", tianditu_key=SecretStr("k")
        )


def test_unknown_tile_source_rejected() -> None:
    with pytest.raises(ValidationError, match="tile_source"):
        ServerSettings(tile_source="osm")  # type: ignore[arg-type]


def test_tianditu_key_never_in_repr() -> None:
    server = ServerSettings(tile_source="tianditu", tianditu_key=SecretStr("secret-key-1"))
    assert "secret-key-1" not in repr(server)
