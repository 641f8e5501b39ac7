"""Basemap tile sources of the map pages: none, a URL template, Tianditu or Amap.

The pages load tiles only from the source the settings name. With none (the
default) they load nothing from outside the service and work offline.

- Tianditu (天地图) tiles are drawn in CGCS2000, which agrees with WGS84 to well under
  a metre, so features are shown in WGS84 as stored.
- Amap (高德) tiles are drawn in GCJ-02, so the pages request every feature in GCJ-02.
  The API converts them per response and the stored WGS84 coordinates do not change.
"""

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from api.settings import ServerSettings

# The vector basemap (vec) in the Web Mercator tile matrix set (w), servers t0 to t7.
TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk="
)
TIANDITU_ATTRIBUTION = "天地图 · 国家地理信息公共服务平台"
# The road map (style 8) with Chinese labels, servers webrd01 to webrd04.
AMAP_URL = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
AMAP_ATTRIBUTION = "© 高德地图 AutoNavi"


@dataclass(frozen=True, slots=True)
class TileSource:
    """The basemap a map page draws, and the coordinate system its features are shown in."""

    url: str
    """Leaflet URL template; empty when the pages draw no basemap."""
    attribution: str
    coord_sys: str
    """``wgs84``, ``gcj02`` or ``bd09``: the pages request features in this system."""
    subdomains: str
    """Values of the ``{s}`` placeholder, one character each."""
    csp_origin: str | None
    """Content-Security-Policy source of the tile images; None when same-origin or none."""


def tile_source(server: ServerSettings) -> TileSource:
    """Return the tile source the settings select (see ``ServerSettings.tile_source``)."""
    kind = server.tile_source or ("url" if server.tile_url else "none")
    if kind == "tianditu":
        key = quote(server.tianditu_key.get_secret_value(), safe="")
        # NOTE: every page sends the key to the browser, so it is public. Restrict it to
        # the service's domain in the Tianditu console.
        return TileSource(
            TIANDITU_URL + key,
            TIANDITU_ATTRIBUTION,
            "wgs84",
            "01234567",
            "https://*.tianditu.gov.cn",
        )
    if kind == "amap":
        return TileSource(AMAP_URL, AMAP_ATTRIBUTION, "gcj02", "1234", "https://*.is.autonavi.com")
    if kind == "url":
        return TileSource(
            server.tile_url,
            server.tile_attribution,
            server.tile_coord_sys,
            "abc",
            tile_origin(server.tile_url),
        )
    return TileSource("", "", server.tile_coord_sys, "abc", None)


def tile_origin(tile_url: str) -> str | None:
    """Return the CSP source of a Leaflet tile URL template, or None when same-origin.

    A ``{s}`` subdomain placeholder becomes the ``*`` wildcard that CSP accepts, so
    ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` gives ``https://*.tile.example.org``.
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if not parts.netloc:
        return None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"tile_url scheme {parts.scheme!r} is invalid; expected http or https")
    return f"{parts.scheme}://{parts.netloc}"
