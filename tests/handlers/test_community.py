import math
import zoneinfo

import pytest
from pydantic import ValidationError

from handlers.community import (
    DEFAULT_CATEGORIES,
    LANGUAGES,
    Category,
    Community,
    Escalation,
    GeoPoint,
    Grid,
    Limits,
    PoliceGroups,
    haversine_m,
    normalise_building,
)

CENTER = GeoPoint(lat=31.2304, lon=121.4737)
G1_CENTER = GeoPoint(lat=31.2290, lon=121.4720)
G2_CENTER = GeoPoint(lat=31.2326, lon=121.4720)


def make_community(**overrides: object) -> Community:
    data: dict[str, object] = {
        "name": "幸福里社区",
        "center": CENTER,
        "radius_m": 1500,
        "grids": [
            {"key": "g1", "name": "第一网格", "buildings": ["1", "2", "3", "A2"], "center": G1_CENTER},
            {"key": "g2", "name": "第二网格", "buildings": ["7", "8", "12"], "center": G2_CENTER},
        ],
    }
    data.update(overrides)
    return Community.model_validate(data)


def test_defaults() -> None:
    community = Community(name="x", grids=[Grid(key="g", name="G", buildings=["1"])])
    assert community.timezone == "Asia/Shanghai"
    assert community.tz == zoneinfo.ZoneInfo("Asia/Shanghai")
    assert community.default_language == "zh_CN"
    assert community.center is None
    assert community.radius_m == 3000
    assert community.police_groups == PoliceGroups(telegram=[], wecom=[])
    assert community.escalation == Escalation(
        urgent_ack_minutes=15, normal_ack_minutes=120, urgent_escalate_minutes=30, normal_escalate_minutes=240
    )
    assert community.limits == Limits(
        reports_per_hour=10,
        max_photos=3,
        draft_idle_minutes=30,
        invite_valid_hours=72,
        description_max_chars=1000,
        description_min_chars=4,
    )
    assert [c.key for c in community.categories] == [
        "road",
        "fire",
        "suspicious",
        "dispute",
        "fraud",
        "sanitation",
        "other",
    ]
    assert all(c.names == {} for c in community.categories)
    assert tuple(community.categories) == DEFAULT_CATEGORIES
    assert LANGUAGES == ("zh_CN", "en", "zh_TW")


def test_default_categories_are_not_shared_between_instances() -> None:
    a = make_community()
    b = make_community()
    assert a.categories == b.categories
    assert a.categories is not b.categories


def test_models_are_frozen_and_strict_about_keys() -> None:
    community = make_community()
    with pytest.raises(ValidationError):
        community.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Grid(key="g", name="G", buildings=["1"], colour="red")  # type: ignore[call-arg]


def test_lookup_by_key() -> None:
    community = make_community()
    assert community.grid("g2") is community.grids[1]
    assert community.grid("g3") is None
    assert community.category("fraud") is community.categories[4]
    assert community.category("nope") is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("3", "g1"),
        (" 3 ", "g1"),
        ("3号楼", "g1"),
        ("3号", "g1"),
        ("3栋", "g1"),
        ("3幢", "g1"),
        ("#3", "g1"),
        ("# 3 号楼", "g1"),
        ("＃３栋", "g1"),  # full-width input from a Chinese IME
        ("a2", "g1"),
        ("Ａ2号楼", "g1"),
        ("12", "g2"),
        ("12号楼", "g2"),
        ("1", "g1"),
    ],
)
def test_grid_for_building_normalises(typed: str, expected: str) -> None:
    grid = make_community().grid_for_building(typed)
    assert grid is not None
    assert grid.key == expected


@pytest.mark.parametrize("typed", ["13", "", "号楼", "#", "2A", "31"])
def test_grid_for_unknown_building(typed: str) -> None:
    assert make_community().grid_for_building(typed) is None


def test_building_numbers_may_be_integers_and_suffixes_match_config() -> None:
    community = make_community(
        grids=[
            {"key": "g1", "name": "一", "buildings": [1, 2]},
            {"key": "g2", "name": "二", "buildings": ["5号楼"]},
        ]
    )
    assert community.grids[0].buildings == ["1", "2"]
    assert community.grid_for_building("2栋") is community.grids[0]
    assert community.grid_for_building("5") is community.grids[1]


def test_normalise_building() -> None:
    assert normalise_building(" ＃Ａ3号楼 ") == "a3"
    # Only one suffix is stripped, so a doubled suffix stays distinct.
    assert normalise_building("3号楼号") == "3号楼"


def test_haversine() -> None:
    assert haversine_m(CENTER, CENTER) == 0
    one_degree = haversine_m(GeoPoint(lat=0, lon=0), GeoPoint(lat=1, lon=0))
    assert one_degree == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(G1_CENTER, G2_CENTER) == pytest.approx(400, abs=2)
    antipode = haversine_m(GeoPoint(lat=0, lon=0), GeoPoint(lat=0, lon=180))
    assert antipode == pytest.approx(math.pi * 6_371_008.8)


def nearest_key(community: Community, lat: float, lon: float) -> str | None:
    grid = community.grid_for_location(GeoPoint(lat=lat, lon=lon))
    return grid.key if grid else None


def test_grid_for_location_picks_nearest_center() -> None:
    community = make_community()
    assert nearest_key(community, 31.2330, 121.4725) == "g2"
    assert nearest_key(community, 31.2280, 121.4700) == "g1"
    # Just north of the midpoint between the two centers.
    assert nearest_key(community, 31.2309, 121.4720) == "g2"
    assert nearest_key(community, 31.2307, 121.4720) == "g1"
    # Nearest wins even far outside the community.
    assert nearest_key(community, 40.0, 116.4) == "g2"


def test_grid_for_location_skips_grids_without_center() -> None:
    community = make_community(
        grids=[
            {"key": "g1", "name": "一", "buildings": ["1"]},
            {"key": "g2", "name": "二", "buildings": ["2"], "center": G1_CENTER},
        ]
    )
    assert community.grid_for_location(G2_CENTER) is community.grids[1]
    no_centers = make_community(grids=[{"key": "g1", "name": "一", "buildings": ["1"]}])
    assert no_centers.grid_for_location(G1_CENTER) is None


def test_is_inside() -> None:
    community = make_community()
    assert community.is_inside(CENTER)
    # ~1.4 km north: inside a 1500 m radius.
    assert community.is_inside(GeoPoint(lat=31.2430, lon=121.4737))
    # ~1.6 km north: outside.
    assert not community.is_inside(GeoPoint(lat=31.2448, lon=121.4737))
    assert not community.is_inside(GeoPoint(lat=39.9, lon=116.4))


def test_is_inside_without_center_accepts_everything() -> None:
    community = make_community(center=None)
    assert community.is_inside(GeoPoint(lat=-33.9, lon=18.4))


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "Asia"}, "unknown time zone 'Asia'"),
        ({"default_language": "fr"}, "unknown language 'fr'"),
        ({"radius_m": 0}, "greater than 0"),
        ({"grids": []}, "at least 1 item"),
        ({"center": {"lat": 91, "lon": 0}}, "less than or equal to 90"),
        (
            {"categories": [{"key": "fire"}, {"key": "fire"}]},
            "category key 'fire' is already used by categories[0]",
        ),
        ({"categories": [{"key": "A b"}]}, "'A b' is not a valid key"),
        ({"categories": [{"key": "a", "names": {"fr": "x"}}]}, "unknown language 'fr'"),
        ({"escalation": {"urgent_ack_minutes": 30}}, "greater than urgent_ack_minutes (30)"),
        ({"escalation": {"normal_escalate_minutes": 100}}, "greater than normal_ack_minutes (120)"),
        ({"escalation": {"urgent_ack_minutes": 0}}, "greater than 0"),
        ({"limits": {"description_min_chars": 2000}}, "must not exceed description_max_chars (1000)"),
        (
            {
                "grids": [
                    {"key": "g1", "name": "一", "buildings": ["1"]},
                    {"key": "g1", "name": "二", "buildings": ["2"]},
                ]
            },
            "grid key 'g1' is already used by grids[0]",
        ),
        (
            {
                "grids": [
                    {"key": "g1", "name": "一", "buildings": ["1", "3"]},
                    {"key": "g2", "name": "二", "buildings": ["2", "#3"]},
                ]
            },
            "building '#3' is already in grid 'g1'",
        ),
        ({"grids": [{"key": "g1", "name": "一", "buildings": ["3", "3栋"]}]}, "listed twice"),
        ({"grids": [{"key": "g1", "name": "一", "buildings": []}]}, "at least 1 item"),
        ({"grids": [{"key": "g1", "name": " ", "buildings": ["1"]}]}, "at least 1 character"),
    ],
)
def test_invalid_community(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_community(**overrides)
    assert fragment in str(info.value)


def test_duplicate_errors_carry_precise_position() -> None:
    with pytest.raises(ValidationError) as info:
        make_community(
            grids=[
                {"key": "g1", "name": "一", "buildings": ["1", "3"]},
                {"key": "g2", "name": "二", "buildings": ["2", "3号楼"]},
            ]
        )
    [error] = info.value.errors()
    assert error["loc"] == ("grids",)
    assert error["ctx"]["at"] == (1, "buildings", 1)


def test_category_names() -> None:
    category = Category(key="road", names={"zh_CN": "道路设施", "en": "Roads"})
    assert category.names["en"] == "Roads"


def test_custom_category_needs_names() -> None:
    from handlers.community import Category

    assert Category(key="fire").names == {}
    assert Category(key="parking", names={"zh_CN": "违停"}).names == {"zh_CN": "违停"}
    with pytest.raises(ValidationError, match="needs names"):
        Category(key="parking")
