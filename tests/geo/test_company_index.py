"""Tests of company-name normalisation and the company POI index on real files."""

from pathlib import Path

import pandas as pd
import pytest

from geo.company_index import CompanyIndex, load_company_index, normalise_company_name
from geo.crs import CoordSys, geodesic_distance_m, to_wgs84
from geo.gazetteer import build_gazetteer
from geo.location import Precision
from geo.regions import Regions
from geo.zones import DevelopmentZone

COMPANIES = Path("xian_poi_baidu_richiebao") / "companies.csv"
JOBS_2018 = Path("xian_jobs_51job2018_feilyzhang") / "xian_51job_postings_2018.csv"


@pytest.fixture(scope="module")
def index(data_dir: Path) -> CompanyIndex:
    return load_company_index(data_dir)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("陕西荣佳电气设备有限公司", "荣佳电气设备"),
        ("西安市三粮液酒业有限公司(尚德路)", "三粮液酒业"),
        ("群光实业（西安）有限公司", "群光实业(西安)"),
        ("长岭（集团）股份有限公司", "长岭"),
        (" 西安 美齐电子商务有限公司 ", "美齐电子商务"),
        ("陕西医药控股集团派昂医药有限责任公司", "医药控股集团派昂医药"),
        ("GUESS (shanghai)Limited", "guess(shanghai)limited"),
        ("西安", "西安"),
    ],
)
def test_normalise_company_name(name: str, key: str) -> None:
    assert normalise_company_name(name) == key


def test_unique_company_is_poi(index: CompanyIndex, data_dir: Path) -> None:
    companies = pd.read_csv(data_dir / COMPANIES)
    rows = companies[companies["name"] == "陕西荣佳电气设备有限公司"]
    assert len(rows) == 1
    lon, lat = to_wgs84(rows["lng_gcj02"].iloc[0], rows["lat_gcj02"].iloc[0], CoordSys.GCJ02)

    poi = index.unambiguous_poi("陕西荣佳电气设备有限公司")
    assert poi is not None
    assert geodesic_distance_m(poi.lon, poi.lat, lon, lat) < 1.0


def test_chain_is_ambiguous(index: CompanyIndex) -> None:
    assert len(index.lookup("顺丰速运")) >= 6
    assert index.unambiguous_poi("顺丰速运") is None
    assert index.unambiguous_poi("中国移动") is None


def test_gazetteer_poi_precision(
    data_dir: Path, regions: Regions, zones: list[DevelopmentZone]
) -> None:
    gazetteer = build_gazetteer(data_dir, regions, zones)

    unique = gazetteer.locate("西安", company="陕西荣佳电气设备有限公司")
    chain = gazetteer.locate("西安", company="顺丰速运")
    elsewhere = gazetteer.locate("西安-鄠邑区", company="陕西荣佳电气设备有限公司")

    assert unique.precision is Precision.POI
    assert unique.source == "baidu_poi:companies.csv"
    assert unique.district_code == "610112"
    assert chain.precision is Precision.CITY
    assert elsewhere.precision is Precision.DISTRICT


def test_fuzzy_candidates_only_list(index: CompanyIndex) -> None:
    assert "荣佳电气设备" in index.fuzzy_candidates("陕西荣佳电器设备有限公司")
    assert index.lookup("陕西荣佳电器设备有限公司") == []


def test_51job_2018_match_counts(index: CompanyIndex, data_dir: Path) -> None:
    jobs = pd.read_csv(data_dir / JOBS_2018)
    companies = jobs["company"].drop_duplicates()
    matched = companies[companies.map(lambda name: index.unambiguous_poi(name) is not None)]

    assert len(companies) == 10_934
    assert len(matched) == 198
    assert jobs["company"].isin(set(matched)).sum() == 1_146
