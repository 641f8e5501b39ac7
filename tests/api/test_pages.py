"""Page rendering without a browser: language, security headers, same-origin URLs.

Most tests use the ``client`` fixture (the real app on a small store of XSS payloads).
``build_stub_app`` serves the pages over stub JSON routes with one anchor per payload
in districts far apart, so the browser tests can click every marker without clusters,
and with tile settings that the fixture app does not have.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from api.pages import (
    MissingAssetsError,
    content_security_policy,
    load_messages,
    mount_assets,
    router,
    tile_origin,
)
from api.settings import ServerSettings, Settings

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


def _stub_jobs(points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    jobs = []
    for index, (payload, (lon, lat)) in enumerate(zip(XSS_PAYLOADS, points, strict=True)):
        is_city = index == len(XSS_PAYLOADS) - 1
        jobs.append(
            {
                "posting_id": f"p{index}",
                "title": payload,
                "company": "公司" + payload,
                "salary_text": "6000-8000元/月",
                "salary_min_month": 6000,
                "salary_max_month": 8000,
                "distance_m": None if is_city else 1200.0 + 800 * index,
                "precision": "city" if is_city else PRECISIONS[index],
                "precision_label": "仅知在西安" if is_city else "精确位置",
                "approximate": is_city,
                "location_label": "西安" if is_city else "地点" + payload,
                "district_name": "" if is_city else "碑林区",
                "lon": lon,
                "lat": lat,
                "score": 1.0 - index / 10,
                "reasons": ["离家约1公里", "理由" + payload],
                "published_on": "2018-06-01",
            }
        )
    return jobs


def build_stub_app(data_dir: Path, server: ServerSettings | None = None) -> FastAPI:
    """Build an app with the page router, the assets and stub JSON routes."""
    districts = _districts(data_dir)
    by_name = {f["properties"]["name"]: f for f in districts["features"]}
    points = [_representative_point(by_name[name]) for name in ANCHOR_DISTRICTS]
    jobs = _stub_jobs(points)
    seekers = [
        {
            "seeker_id": f"s{index}",
            "group": "graduate",
            "group_label": "高校毕业生",
            "education_label": "本科",
            "occupation_wish_name": payload,
            "home_label": "小区" + payload,
            "district_name": "雁塔区",
            "max_commute_min": 45,
            "simulated": True,
        }
        for index, payload in enumerate(XSS_PAYLOADS[:3])
    ]

    app = FastAPI()
    app.state.settings = Settings(server=server or ServerSettings(tile_url=""))

    @app.get("/v1/layers")
    def layers() -> dict[str, Any]:
        item = {"source": "stub", "updated": "2024", "geometry_type": "Point"}
        return {
            "items": [
                {"name": "districts", "title_zh": "区县", "title_en": "Districts", **item},
                {"name": "hr_offices", "title_zh": "人社/就业服务机构", "title_en": "HR", **item},
            ]
        }

    @app.get("/v1/layers/{name}")
    def layer(name: str, coord_sys: str = "wgs84") -> dict[str, Any]:
        if name == "districts":
            return districts
        lon, lat = points[0]
        feature = {
            "type": "Feature",
            "properties": {"name": "人社局" + XSS_PAYLOADS[1], "kind": "hr_office"},
            "geometry": {"type": "Point", "coordinates": [lon + 0.05, lat]},
        }
        return {"type": "FeatureCollection", "features": [feature]}

    @app.get("/v1/anchors")
    def anchors(bbox: str, coord_sys: str = "wgs84") -> dict[str, Any]:
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
                },
                "geometry": {"type": "Point", "coordinates": [job["lon"], job["lat"]]},
            }
            for job in jobs
            if min_lon <= job["lon"] <= max_lon and min_lat <= job["lat"] <= max_lat
        ]
        return {"type": "FeatureCollection", "features": features}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        counts = {job["precision"]: 1 for job in jobs}
        return {"anchors_by_precision": counts, "postings": 73756, "seekers": 20000,
                "simulated_seekers": True}  # fmt: skip

    @app.get("/v1/seekers")
    def seeker_list(limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return {"items": seekers[offset : offset + limit], "total": len(seekers)}

    @app.get("/v1/seekers/{seeker_id}/recommendations")
    def recommendations(seeker_id: str, limit: int = 20) -> dict[str, Any]:
        seeker = next(s for s in seekers if s["seeker_id"] == seeker_id)
        home = {"lon": 108.9423, "lat": 34.2610}
        return {"seeker": {**seeker, "home": home}, "items": jobs[:limit], "simulated": True}

    @app.get("/v1/jobs/nearby")
    def nearby(
        lon: float, lat: float, radius_m: float = 3000, page: int = Query(1), page_size: int = 20
    ) -> dict[str, Any]:
        return {"items": jobs, "total": len(jobs), "page": page, "page_size": page_size}

    app.include_router(router)
    mount_assets(app, REPO_ROOT)
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


def test_page_rejects_unknown_lang(client: TestClient) -> None:
    response = client.get("/", params={"lang": "fr"})

    assert response.status_code == 422
    assert "lang" in response.text


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
