"""A folium map of the service circle's gaps: places beyond the walking threshold.

The map loads only Leaflet, from ``assets_url`` (the service serves it at
``/assets/leaflet``), and has no tile layer, so it fetches nothing from other hosts.
Labels are zh-CN with English after a slash, and every POI name is HTML-escaped.
"""

import html

import folium

from geo.coverage.circle import ServiceCircle

DEFAULT_ASSETS_URL = "/assets/leaflet"
GAP_COLOR = "#d7301f"
COVERED_COLOR = "#31a354"
STATION_COLOR = "#2b8cbe"


def gap_map(circle: ServiceCircle, *, assets_url: str = DEFAULT_ASSETS_URL) -> folium.Map:
    """Draw stations, covered places and gap places on a Leaflet map without tiles.

    Parameters
    ----------
    circle
        The computed service circle. Its WGS84 points are drawn unconverted, which
        is right without a basemap or with a WGS84 one.
    assets_url
        URL folder holding ``leaflet.js`` and ``leaflet.css``.

    Returns
    -------
    folium.Map
        Three overlays: 就业服务站 stations, 圈内 covered and 圈外 gaps.
    """
    places = circle.places
    center = [float(places["lat"].mean()), float(places["lon"].mean())]
    figure = folium.Map(location=center, zoom_start=11, tiles=None, control_scale=True)
    figure.default_js = [("leaflet", f"{assets_url}/leaflet.js")]
    figure.default_css = [("leaflet_css", f"{assets_url}/leaflet.css")]

    minutes = f"{circle.threshold_min:.0f}"
    gaps = folium.FeatureGroup(name=f"{minutes}分钟圈外小区 / places beyond {minutes} min")
    covered = folium.FeatureGroup(name=f"{minutes}分钟圈内小区 / places within {minutes} min")
    rows = zip(
        places["name"].astype(str),
        places["lon"].to_numpy(float),
        places["lat"].to_numpy(float),
        places["minutes"].to_numpy(float),
        places["covered"].to_numpy(bool),
        strict=True,
    )
    for name, lon, lat, walk_min, is_covered in rows:
        group, color = (covered, COVERED_COLOR) if is_covered else (gaps, GAP_COLOR)
        label = f"{html.escape(name)}：步行约 {walk_min:.0f} 分钟"
        folium.CircleMarker(
            [lat, lon], radius=3, color=color, fill=True, weight=1, tooltip=label
        ).add_to(group)

    stations = folium.FeatureGroup(name="就业服务站 / employment stations")
    station_rows = zip(
        circle.stations["name"].astype(str),
        circle.stations["lon"].to_numpy(float),
        circle.stations["lat"].to_numpy(float),
        strict=True,
    )
    for name, lon, lat in station_rows:
        folium.CircleMarker(
            [lat, lon], radius=6, color=STATION_COLOR, fill=True, tooltip=html.escape(name)
        ).add_to(stations)

    for group in (gaps, covered, stations):
        group.add_to(figure)
    folium.LayerControl(collapsed=False).add_to(figure)
    return figure
