"""Page rendering without a browser: language, security headers, same-origin URLs.

Most tests use the ``client`` fixture (the real app on a small store of XSS payloads).
``build_stub_app`` serves the pages over stub JSON routes with one anchor per payload
in districts far apart, so the browser tests can click every marker without clusters.
It also takes tile settings, a page-size limit and an anchor limit, which the fixture
app does not have.
"""

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.testclient import TestClient

from api.middleware import (
    SecurityHeadersMiddleware,
    content_security_policy,
    security_headers,
    tile_origin,
)
from api.pages import MissingAssetsError, load_messages, mount_assets, page_sizes, router
from api.presenters import GROUP_LABELS, precision_label
from api.settings import QuerySettings, ServerSettings, Settings
from geo.layers import load_layers
from geo.location import Precision
from geo.regions import load_regions
from matching.seeker_simulation import GROUPS as SEEKER_GROUPS
from store.anchor_map import ClusterGrid, clusters_collection

REPO_ROOT = Path(__file__).resolve().parents[2]

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "`${document.cookie}`",
    "\\u003cscript\\u003e",
    "</script><script>alert(1)</script>",
]

# Districts far enough apart that their anchors stay unclustered at the whole-city view.
ANCHOR_DISTRICTS = ["周至县", "蓝田县", "阎良区", "临潼区", "鄠邑区", "长安区"]

PRECISIONS = ["exact", "poi", "building", "business_area", "zone", "district", "city"]


def _districts(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "xian_admin_districts_fastgeocn" / "xian_districts_cgcs2000.geojson"
    collection: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for feature in collection["features"]:
        feature["properties"] = {"name": feature["properties"]["name"], "kind": "district"}
    return collection


def _representative_point(feature: dict[str, Any]) -> tuple[float, float]:
    from shapely.geometry import shape

    point = shape(feature["geometry"]).representative_point()
    return point.x, point.y


def _stub_jobs(points: list[tuple[float, float]], lang: str) -> list[dict[str, Any]]:
    """One job per payload; the last is city-level, the second has its district as label."""
    jobs = []
    for index, (payload, (lon, lat)) in enumerate(zip(XSS_PAYLOADS, points, strict=True)):
        precision = "city" if index == len(XSS_PAYLOADS) - 1 else PRECISIONS[index]
        is_city = precision == "city"
        location_label = "地点" + payload
        if index == 1:
            location_label = "碑林区"
        jobs.append(
            {
                "posting_id": f"p{index}",
                "title": payload,
                "company": "公司" + payload,
                "salary_text": "" if index == 2 else "6000-8000元/月",
                "salary_min_month": None if index == 2 else 6000,
                "salary_max_month": None if index == 2 else 8000,
                "distance_m": None if is_city else 1200.0 + 800 * index,
                "precision": precision,
                "precision_label": precision_label(precision, lang),
                "approximate": Precision(precision).is_approximate,
                "location_label": "西安" if is_city else location_label,
                "district_name": "" if is_city else "碑林区",
                "lon": lon,
                "lat": lat,
                "score": 1.0 - index / 10,
                "reasons": ["离家约1公里", "理由" + payload],
                "published_on": "2018-06-01",
            }
        )
    return jobs


STUB_SEEKERS = 120
STUB_CITY_ANCHORS = 5174


def _stub_seekers(lang: str) -> list[dict[str, Any]]:
    """120 seekers cycling through the four groups; the first three carry payloads."""
    seekers = []
    for index in range(STUB_SEEKERS):
        group = SEEKER_GROUPS[index % len(SEEKER_GROUPS)]
        payload = XSS_PAYLOADS[index] if index < 3 else ""
        seekers.append(
            {
                "seeker_id": f"sim-{index:06d}",
                "group": group,
                "group_label": GROUP_LABELS[lang][group],
                "education_label": "本科",
                "occupation_wish_name": payload or "软件工程师",
                "home_label": "小区" + payload if payload else "雁塔区",
                "district_name": "雁塔区",
                "max_commute_min": 45,
                "simulated": True,
            }
        )
    return seekers


def _stub_layers(points: list[tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """One feature per HR layer near the anchors, named after the layer."""
    lon, lat = points[0]
    kinds = {
        "hr_offices": "hr_office",
        "street_offices": "street_office",
        "training": "training",
        "universities": "university",
        "parks": "incubator",
        "metro_stations": "metro_station",
    }
    layers: dict[str, dict[str, Any]] = {}
    for offset, (name, kind) in enumerate(kinds.items(), start=1):
        title = "人社局" + XSS_PAYLOADS[1] if name == "hr_offices" else name
        feature = {
            "type": "Feature",
            "properties": {"name": title, "kind": kind, "address": "地址" + XSS_PAYLOADS[0]},
            "geometry": {"type": "Point", "coordinates": [lon + 0.05 * offset, lat]},
        }
        layers[name] = {"type": "FeatureCollection", "features": [feature]}
    line = {
        "type": "Feature",
        "properties": {"name": "地铁2号线", "kind": "metro_line", "color": "#e4002b"},
        "geometry": {"type": "LineString", "coordinates": [list(points[0]), list(points[3])]},
    }
    layers["metro_lines"] = {"type": "FeatureCollection", "features": [line]}
    return layers


def build_stub_app(
    data_dir: Path,
    server: ServerSettings | None = None,
    *,
    max_page_size: int = 100,
    anchor_limit: int | None = None,
) -> FastAPI:
    """Build an app with the page router, the assets and stub JSON routes.

    The stub behaves like the real API: it rejects a limit or page_size above
    ``max_page_size`` with 422, filters seekers by ``group``, labels by ``lang``, and
    above ``anchor_limit`` anchors in view sends grid clusters built by
    `store.anchor_map`, as the stores do. Like an older server it still sends the
    city-level anchor, which the city map must not draw.
    """
    districts = _districts(data_dir)
    by_name = {f["properties"]["name"]: f for f in districts["features"]}
    points = [_representative_point(by_name[name]) for name in ANCHOR_DISTRICTS]
    hr_layers = _stub_layers(points)

    app = FastAPI()
    app.state.settings = Settings(
        server=server or ServerSettings(tile_url=""),
        query=QuerySettings(max_page_size=max_page_size),
    )

    def check_size(name: str, value: int) -> None:
        if value > max_page_size:
            detail = [{"loc": ["query", name], "msg": f"{name} {value} > {max_page_size}",
                       "type": "QueryLimitError"}]  # fmt: skip
            raise HTTPException(status_code=422, detail=detail)

    @app.get("/v1/layers")
    def layers() -> dict[str, Any]:
        item = {"source": "stub", "updated": "2024"}
        listing = [{"name": "districts", "title_zh": "区县", "title_en": "Districts",
                    "geometry_type": "MultiPolygon", **item}]  # fmt: skip
        for name in hr_layers:
            titles = load_messages()
            listing.append(
                {
                    "name": name,
                    "title_zh": titles["zh"]["layer_titles"][name],
                    "title_en": titles["en"]["layer_titles"][name],
                    "geometry_type": "LineString" if name == "metro_lines" else "Point",
                    **item,
                }
            )
        return {"items": listing}

    @app.get("/v1/layers/{name}")
    def layer(name: str, coord_sys: str = "wgs84") -> dict[str, Any]:
        if name == "districts":
            return districts
        return hr_layers[name]

    @app.get("/v1/anchors")
    def anchors(bbox: str, coord_sys: str = "wgs84", lang: str = "zh") -> dict[str, Any]:
        min_lon, min_lat, max_lon, max_lat = (float(value) for value in bbox.split(","))
        features = [
            {
                "type": "Feature",
                "properties": {
                    "anchor_id": job["posting_id"],
                    "name": job["title"],
                    "precision": job["precision"],
                    "precision_label": job["precision_label"],
                    "approximate": job["approximate"],
                    "n_postings": 3,
                    "district_name": job["district_name"],
                    # The first anchor is a key enterprise, the second above-scale industrial.
                    "key_enterprise": index == 0,
                    "above_scale_industrial": index == 1,
                },
                "geometry": {"type": "Point", "coordinates": [job["lon"], job["lat"]]},
            }
            for index, job in enumerate(_stub_jobs(points, lang))
            if min_lon <= job["lon"] <= max_lon and min_lat <= job["lat"] <= max_lat
        ]
        if anchor_limit is None or len(features) <= anchor_limit:
            return {"type": "FeatureCollection", "clustered": False, "total": len(features),
                    "features": features}  # fmt: skip
        lons = np.array([f["geometry"]["coordinates"][0] for f in features])
        lats = np.array([f["geometry"]["coordinates"][1] for f in features])
        grid = ClusterGrid.for_bbox((min_lon, min_lat, max_lon, max_lat), anchor_limit)
        flags = {
            name: np.array([f["properties"][name] for f in features], dtype=np.bool_)
            for name in ("key_enterprise", "above_scale_industrial")
        }
        text = clusters_collection(lons, lats, np.full(len(features), 3), grid, **flags)
        return json.loads(text)  # type: ignore[no-any-return]

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        counts = {precision: 1 for precision in PRECISIONS}
        counts["city"] = STUB_CITY_ANCHORS
        return {"anchors_by_precision": counts, "postings": 73756, "seekers": 20000,
                "simulated_seekers": True}  # fmt: skip

    @app.get("/v1/stats/districts")
    def district_stats() -> dict[str, Any]:
        row = {
            "district_code": "610103",
            "district_name": "碑林区",
            "precision": "poi",
            "precision_label": "地图兴趣点",
            "state": "draft",
            "state_label": "草稿",
            "n": 2,
        }
        return {"items": [row]}

    @app.get("/v1/dev/seekers")
    def seeker_list(
        limit: int = 50, offset: int = 0, group: str | None = None, lang: str = "zh"
    ) -> dict[str, Any]:
        check_size("limit", limit)
        found = [s for s in _stub_seekers(lang) if group is None or s["group"] == group]
        return {"items": found[offset : offset + limit], "total": len(found)}

    @app.post("/v1/dev/seekers/{seeker_id}/session")
    def seeker_session(seeker_id: str) -> dict[str, Any]:
        if not any(s["seeker_id"] == seeker_id for s in _stub_seekers("zh")):
            detail = [
                {
                    "loc": ["path"],
                    "msg": f"simulated seeker {seeker_id} not found",
                    "msg_zh": f"模拟求职者 {seeker_id} 不存在",
                    "type": "NotFoundError",
                }
            ]
            raise HTTPException(status_code=404, detail=detail)
        return {"token": f"stub-{seeker_id}", "expires_at": "2031-01-01T00:00:00Z",
                "seeker_id": seeker_id}  # fmt: skip

    @app.get("/v1/me/recommendations")
    def recommendations(
        limit: int = 20, lang: str = "zh", authorization: str = Header("")
    ) -> dict[str, Any]:
        check_size("limit", limit)
        seeker_id = authorization.removeprefix("Bearer stub-")
        seeker = next((s for s in _stub_seekers(lang) if s["seeker_id"] == seeker_id), None)
        if seeker is None:
            raise HTTPException(status_code=401, detail="missing bearer token")
        home = {"lon": 108.9423, "lat": 34.2610}
        items = _stub_jobs(points, lang)[:limit]
        return {"seeker": {**seeker, "home": home}, "items": items, "simulated": True}

    @app.get("/v1/jobs/nearby")
    def nearby(
        lon: float,
        lat: float,
        radius_m: float = 3000,
        page: int = Query(1),
        page_size: int = 20,
        lang: str = "zh",
    ) -> dict[str, Any]:
        check_size("page_size", page_size)
        jobs = _stub_jobs(points, lang)
        return {"items": jobs, "total": len(jobs), "page": page, "page_size": page_size}

    app.include_router(router)
    mount_assets(app, REPO_ROOT)
    # The real app's headers, so the browser tests run the pages under the real CSP.
    app.add_middleware(SecurityHeadersMiddleware, headers=security_headers(app.state.settings))
    return app


# src="...", href="...", url(...): every reference a page or stylesheet makes.
URL_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)""")


def _references(text: str) -> list[str]:
    return [a or b for a, b in URL_REFERENCE.findall(text)]


def _external(references: list[str]) -> list[str]:
    return [ref for ref in references if re.match(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", ref, re.I)]


@pytest.mark.parametrize("path", ["/", "/seeker"])
def test_page_defaults_to_chinese(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "模拟数据" in response.text
    assert "城市地图" in response.text


@pytest.mark.parametrize("path", ["/", "/seeker"])
def test_page_english_with_lang_en(client: TestClient, path: str) -> None:
    response = client.get(path, params={"lang": "en"})

    assert response.status_code == 200
    assert '<html lang="en">' in response.text
    assert "simulated data" in response.text
    assert "城市地图" not in response.text


@pytest.mark.parametrize("path", ["/", "/seeker"])
def test_unknown_lang_gives_html_422(client: TestClient, path: str) -> None:
    response = client.get(path, params={"lang": "fr"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "语言参数无效" in response.text
    assert "参数 lang 的值“fr”无效" in response.text
    assert f'href="{path}?lang=zh"' in response.text
    assert f'href="{path}?lang=en"' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert _external(_references(response.text)) == []


def test_unknown_lang_value_is_escaped(client: TestClient) -> None:
    response = client.get("/", params={"lang": "<script>alert(1)</script>"})

    assert response.status_code == 422
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert re.search(r"<script", response.text) is None


def test_unknown_lang_long_value_is_cut(client: TestClient) -> None:
    response = client.get("/", params={"lang": "x" * 500})

    assert response.status_code == 422
    assert "x" * 40 in response.text
    assert "x" * 41 not in response.text


@pytest.mark.parametrize("path", ["/", "/seeker"])
def test_page_references_same_origin_only(client: TestClient, path: str) -> None:
    references = _references(client.get(path).text)

    assert "/assets/leaflet/leaflet.js" in references
    assert "/static/map-base.js" in references
    assert _external(references) == []


@pytest.mark.parametrize(
    "path",
    [
        "/static/pages.css",
        "/assets/leaflet/leaflet.css",
        "/assets/markercluster/MarkerCluster.css",
        "/assets/markercluster/MarkerCluster.Default.css",
    ],
)
def test_stylesheet_references_same_origin_only(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert _external(_references(response.text)) == []


@pytest.mark.parametrize(
    "path",
    [
        "/assets/leaflet/leaflet.js",
        "/assets/markercluster/leaflet.markercluster.js",
        "/static/map-base.js",
        "/static/city-map.js",
        "/static/seeker-page.js",
        "/static/favicon.svg",
    ],
)
def test_assets_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_our_scripts_never_parse_html() -> None:
    for script in sorted((REPO_ROOT / "api" / "static").glob("*.js")):
        text = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"
        assert "`" not in text, f"{script.name} uses a template literal"


@pytest.mark.parametrize("path", ["/", "/seeker"])
def test_page_sets_content_security_policy(client: TestClient, path: str) -> None:
    policy = client.get(path).headers["content-security-policy"]

    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "img-src 'self' data:;" in policy
    assert "unsafe-eval" not in policy


def test_page_has_no_inline_script(client: TestClient) -> None:
    html = client.get("/").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)

    assert scripts
    for attributes, body in scripts:
        if body.strip():
            assert 'type="application/json"' in attributes


def test_tile_host_allowed_for_images(data_dir: Path) -> None:
    server = ServerSettings(
        tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png",
        tile_attribution="</script><script>alert(1)</script>",
        tile_coord_sys="gcj02",
    )
    client = TestClient(build_stub_app(data_dir, server))

    response = client.get("/seeker")

    assert (
        "img-src 'self' data: https://*.tile.example.org;"
        in response.headers["content-security-policy"]
    )
    assert "</script><script>alert(1)" not in response.text
    config = re.search(r'<script type="application/json" id="page-config">(.*?)</script>',
                       response.text, re.S)  # fmt: skip
    assert config is not None
    assert json.loads(config.group(1))["coord_sys"] == "gcj02"
    assert json.loads(config.group(1))["tile_attribution"] == server.tile_attribution


def test_tile_origin_same_origin_is_none() -> None:
    assert tile_origin("") is None
    assert tile_origin("/tiles/{z}/{x}/{y}.png") is None
    assert tile_origin("http://127.0.0.1:9000/{z}/{x}/{y}.png") == "http://127.0.0.1:9000"


def test_tile_origin_rejects_other_scheme() -> None:
    with pytest.raises(ValueError, match="'javascript'"):
        tile_origin("javascript://x/{z}")


def test_content_security_policy_without_tiles() -> None:
    policy = content_security_policy(ServerSettings(tile_url=""))

    assert "img-src 'self' data:;" in policy
    assert "frame-ancestors 'none'" in policy


def test_messages_zh_and_en_have_same_keys() -> None:
    messages = load_messages()

    assert set(messages["zh"]) == set(messages["en"])
    assert messages["zh"]["precision_labels"]["business_area"] == "商圈级估计"
    assert set(messages["zh"]["precision_labels"]) == set(PRECISIONS)


def test_mount_assets_without_node_modules(tmp_path: Path) -> None:
    with pytest.raises(MissingAssetsError, match="npm ci"):
        mount_assets(FastAPI(), tmp_path)


def _page_config(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="page-config">(.*?)</script>', html, re.S
    )
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


@pytest.mark.parametrize(
    ("max_page_size", "seeker_size", "job_size"),
    [(100, 50, 20), (50, 50, 20), (30, 30, 20), (10, 10, 10), (1, 1, 1)],
)
def test_page_sizes_capped_by_server_limit(
    max_page_size: int, seeker_size: int, job_size: int
) -> None:
    sizes = page_sizes(max_page_size)

    assert sizes["seeker_page_size"] == seeker_size
    assert sizes["job_page_size"] == job_size
    assert sizes["max_page_size"] == max_page_size


def test_seeker_page_config_from_settings(data_dir: Path) -> None:
    client = TestClient(build_stub_app(data_dir, max_page_size=30))

    config = _page_config(client.get("/seeker").text)

    assert config["max_page_size"] == 30
    assert config["seeker_page_size"] == 30
    assert config["job_page_size"] == 20
    assert config["lang"] == "zh"


def test_seeker_page_default_page_size(client: TestClient) -> None:
    config = _page_config(client.get("/seeker", params={"lang": "en"}).text)

    assert config["seeker_page_size"] == 50
    assert config["lang"] == "en"


def test_seeker_page_has_filters_and_pager(client: TestClient) -> None:
    html = client.get("/seeker").text

    for label in ("高校毕业生", "高层次人才", "就业援助对象", "一般求职者"):
        assert label in html
    for code in SEEKER_GROUPS:
        assert f'<option value="{code}">' in html
    assert 'id="seeker-id"' in html
    assert "sim-000080" in html
    assert 'id="seekers-prev"' in html
    assert 'id="seekers-next"' in html
    assert "上一页" in html
    assert "下一页" in html


def test_group_labels_match_api(client: TestClient) -> None:
    messages = load_messages()

    assert messages["zh"]["group_labels"] == GROUP_LABELS["zh"]
    assert set(messages["en"]["group_labels"]) == set(SEEKER_GROUPS)


def test_city_map_has_notes(client: TestClient) -> None:
    html = client.get("/").text

    assert 'id="clustered-note"' in html
    assert 'id="city-note"' in html
    assert 'id="legend-layer-items"' in html
    assert "人社地图图层" in html
    assert "MarkerCluster.Default.css" not in html


def test_negotiable_salary_messages() -> None:
    messages = load_messages()

    assert messages["zh"]["salary_unknown"] == "面议"
    assert messages["en"]["salary_unknown"] == "negotiable"


def test_kind_labels_cover_real_layers(data_dir: Path) -> None:
    layers = load_layers(data_dir, load_regions(data_dir))
    kinds = {kind for _, frame in layers.values() for kind in frame["kind"].unique()}
    messages = load_messages()

    assert "hr_office" in kinds
    assert kinds <= set(messages["zh"]["kind_labels"])
    assert kinds <= set(messages["en"]["kind_labels"])
    assert messages["zh"]["kind_labels"]["hr_office"] == "人社/就业服务机构"


def test_layer_titles_cover_real_layers(data_dir: Path) -> None:
    layers = load_layers(data_dir, load_regions(data_dir))
    titles = load_messages()["zh"]["layer_titles"]

    assert set(layers) - {"districts"} <= set(titles)


def test_city_note_message_format() -> None:
    messages = load_messages()

    assert messages["zh"]["city_anchors_note"].replace("{n}", "5,174") == (
        "仅知在西安：5,174 个锚点，未在地图上标出"
    )
    assert "{n}" in messages["zh"]["clustered_note"]
    assert messages["zh"]["clustered_note"].startswith("当前范围内共有 {n} 个锚点")


def test_language_link_keeps_query(client: TestClient) -> None:
    response = client.get(
        "/through-train", params={"community": "610102009012", "lang": "zh", "x": '"><b>'}
    )

    assert response.status_code == 200
    assert 'href="?lang=en&amp;community=610102009012&amp;x=%22%3E%3Cb%3E"' in response.text
    english = client.get("/through-train", params={"lang": "en", "community": "610102009012"})
    assert 'href="?lang=zh&amp;community=610102009012"' in english.text
