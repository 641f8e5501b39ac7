"""A small store for the assistance tests: simulated seekers, postings at their streets, training.

The three assistance targets of 雁塔区 used here get homes within about 200 m of each
other and walk up to 30 minutes. The six postings sit about 100 m away, so every target
can reach every posting and the targets compete for the vacancies. One posting is a
public-welfare post and one a night-shift post. Each posting counts as one vacancy (no
headcount column), which the allocation tests use.
"""

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from geo.layers import LayerInfo
from matching.seeker_simulation import generate_seekers
from tests.store.test_contract import _inputs

YANTA = "610113"
BEILIN = "610103"

TITLES = ["公益性岗位保洁员", "超市理货员", "夜班保安", "仓库管理员", "客服专员", "社区服务员"]


def plaintext_seekers(data_dir: Path) -> pd.DataFrame:
    """300 simulated seekers (seed 8) with plaintext personal fields; targets moved together."""
    seekers = generate_seekers(data_dir, 300, seed=8)
    chosen = yanta_targets(seekers).index
    first = seekers.loc[chosen[0]]
    for offset, index in enumerate(chosen):
        seekers.loc[index, "home_lon"] = float(first["home_lon"]) + 0.001 * offset
        seekers.loc[index, "home_lat"] = float(first["home_lat"])
        seekers.loc[index, "max_commute_min"] = 30
        seekers.loc[index, "modes"] = "walk"
    return seekers


def yanta_targets(seekers: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The first ``n`` simulated assistance targets living in 雁塔区."""
    chosen = seekers[(seekers["group"] == "assistance") & (seekers["home_district_code"] == YANTA)]
    assert len(chosen) >= n, "the simulation gave too few assistance targets in 雁塔区"
    return chosen.head(n)


def store_inputs(seekers: pd.DataFrame) -> dict[str, Any]:
    """Store inputs: the contract's layers plus training, and six postings near the targets."""
    inputs = _inputs()
    targets = yanta_targets(seekers)
    home = targets.iloc[0]
    point = (float(home["home_lon"]) + 0.001, float(home["home_lat"]))
    anchor_points = [point] * len(TITLES)

    anchors = pd.DataFrame(
        {
            "anchor_id": [f"anc-{i}" for i in range(len(TITLES))],
            "name": [f"单位{i}" for i in range(len(TITLES))],
            "lon": [p[0] for p in anchor_points],
            "lat": [p[1] for p in anchor_points],
            "precision": "poi",
            "source": "test",
            "location_label": "雁塔区",
            "district_code": YANTA,
            "state": "verified",
            "n_postings": 1,
        }
    )
    postings = pd.DataFrame(
        {
            "posting_id": [f"job-{i}" for i in range(len(TITLES))],
            "title": TITLES,
            "company": [f"单位{i}" for i in range(len(TITLES))],
            "salary_min_month": 3000.0,
            "salary_max_month": 4500.0,
            "education": 0,
            "graduate_ok": False,
            "parse_issues": "",
            "occupation_code": "",
            "occupation_name": "",
            "occupation_score": 0.0,
            "categories": "",
            "published_on": "2026-11-20",
            "anchor_id": [f"anc-{i}" for i in range(len(TITLES))],
        }
    )

    inputs["anchors"] = anchors
    inputs["postings"] = postings
    inputs["seekers"] = seeker_codec(Settings()).protect(seekers)
    street_point = (float(home["home_area_lon"]), float(home["home_area_lat"]))
    inputs["layers"] = {**inputs["layers"], "training": training_layer(street_point)}
    inputs["meta"] = {**inputs["meta"], "postings": len(postings)}
    return inputs


def training_layer(point: tuple[float, float]) -> tuple[LayerInfo, gpd.GeoDataFrame]:
    """Two training institutions: one at the targets' street office, one 0.05 degrees east."""
    lon, lat = point
    frame = gpd.GeoDataFrame(
        {
            "name": ["雁塔职业技能培训学校", "远处培训中心"],
            "tag": "教育培训;培训机构",
            "address": ["雁塔路1号", "远处路9号"],
            "baidu_uid": ["uidnear01", "uidfar02"],
            "kind": "training",
            "district_code": YANTA,
        },
        geometry=[shapely.Point(lon, lat), shapely.Point(lon + 0.05, lat)],
        crs="EPSG:4326",
    )
    info = LayerInfo("training", "培训机构", "Training institutions", "test", "2026-12", "Point")
    return info, frame
