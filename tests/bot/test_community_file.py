from pathlib import Path

import pytest

from bot.community_file import CommunityFileError, load_community
from handlers.community import DEFAULT_CATEGORIES, Escalation, GeoPoint, Limits

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "community.example.toml"


def write(tmp_path: Path, *lines: str, name: str = "community.toml") -> Path:
    # Files are built line by line so the expected line numbers can be read off the test.
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path: Path) -> CommunityFileError:
    with pytest.raises(CommunityFileError) as info:
        load_community(path)
    return info.value


MINIMAL = (
    'name = "幸福里社区"',  # 1
    "",  # 2
    "[[grids]]",  # 3
    'key = "g1"',  # 4
    'name = "第一网格"',  # 5
    'buildings = ["1", "2"]',  # 6
)


def test_example_file_loads() -> None:
    community = load_community(EXAMPLE)
    assert community.name == "幸福里社区"
    assert community.timezone == "Asia/Shanghai"
    assert community.default_language == "zh_CN"
    assert community.center == GeoPoint(lat=31.2304, lon=121.4737)
    assert community.radius_m == 1500
    assert community.police_groups.telegram == ["-1001234567890"]
    assert community.police_groups.wecom == []
    assert [(g.key, g.name) for g in community.grids] == [("g1", "第一网格"), ("g2", "第二网格")]
    assert community.grids[0].buildings == [str(n) for n in range(1, 7)]
    assert community.grids[1].buildings == [str(n) for n in range(7, 13)]
    assert [c.key for c in community.categories] == [c.key for c in DEFAULT_CATEGORIES]
    assert all(set(c.names) == {"zh_CN", "en", "zh_TW"} for c in community.categories)
    assert community.category("fraud").names["zh_CN"] == "电信诈骗"  # type: ignore[union-attr]
    assert community.escalation == Escalation()
    assert community.limits == Limits()
    assert community.grid_for_building("8号楼").key == "g2"  # type: ignore[union-attr]
    assert community.is_inside(community.grids[1].center)  # type: ignore[arg-type]


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    community = load_community(write(tmp_path, *MINIMAL))
    assert community.timezone == "Asia/Shanghai"
    assert community.default_language == "zh_CN"
    assert community.center is None
    assert community.radius_m == 3000
    assert community.police_groups.telegram == []
    assert tuple(community.categories) == DEFAULT_CATEGORIES
    assert community.escalation == Escalation()
    assert community.limits == Limits()


def test_accepts_str_path_bom_and_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "community.toml"
    text = "\n".join(
        [
            'name = "x"',
            "[police_groups]",
            "telegram = [-1001234567890]",
            "[[grids]]",
            'key = "g1"',
            'name = "一"',
            "buildings = [1, 2]",
        ]
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    community = load_community(str(path))
    assert community.police_groups.telegram == ["-1001234567890"]
    assert community.grids[0].buildings == ["1", "2"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    error = load_error(path)
    assert str(error) == f"{path}: community file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    error = load_error(tmp_path)
    assert str(error).startswith(f"{tmp_path}: cannot read community file")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "community.toml"
    path.write_bytes(b'name = "x"\n' + '# 注释\nname2 = "幸福"\n'.encode("gb18030"))
    error = load_error(path)
    assert str(error) == f"{path}:2: file is not valid UTF-8 text; save it as UTF-8"


def test_syntax_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[limits]",  # 8
        "max_photos = = 3",  # 9
    )
    error = load_error(path)
    assert str(error).startswith(f"{path}:9: TOML syntax error: ")
    assert "(column 14)" in str(error)
    assert len(error.problems) == 1


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, *MINIMAL, "[limits")  # 7
    error = load_error(path)
    assert str(error).startswith(f"{path}:7: TOML syntax error: ")


def test_unterminated_string_reports_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = """幸福里', "社区")  # 1, 2
    error = load_error(path)
    assert str(error) == f"{path}:2: TOML syntax error: Unterminated string at end of file"


def test_unknown_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[limits]",  # 8
        "reports_per_hour = 5",  # 9
        "max_photo = 3",  # 10
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}:10: limits.max_photo: unknown key (check the spelling; see config/community.example.toml)"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'nmae = "typo"', *MINIMAL)
    error = load_error(path)
    assert str(error).startswith(f"{path}:1: nmae: unknown key")


def test_bad_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, *MINIMAL[:2], 'timezone = "Asia/Beijing"', *MINIMAL[2:])
    error = load_error(path)
    assert str(error) == (
        f"{path}:3: timezone: unknown time zone 'Asia/Beijing'; use an IANA name such as 'Asia/Shanghai'"
    )


def test_duplicate_grid_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[[grids]]",  # 8
        'name = "第二网格"',  # 9
        'key = "g1"',  # 10
        'buildings = ["7"]',  # 11
    )
    error = load_error(path)
    assert str(error) == f"{path}:10: grids[1].key: grid key 'g1' is already used by grids[0]"


def test_building_in_two_grids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[[grids]]",  # 8
        'key = "g2"',  # 9
        'name = "第二网格"',  # 10
        "center = { lat = 31.23, lon = 121.47 }",  # 11
        "buildings = [",  # 12
        '    "7",',  # 13
        '    "2号楼",',  # 14
        "]",  # 15
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}:12: grids[1].buildings[1]: building '2号楼' is already in grid 'g1' "
        "(grids[0], as '2'); a building belongs to one grid only"
    )


def test_wrong_type_in_limits(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[limits]",  # 8
        "max_photos = 3",  # 9
        'reports_per_hour = "many"',  # 10
    )
    error = load_error(path)
    assert str(error).startswith(f"{path}:10: limits.reports_per_hour: Input should be a valid integer")


def test_missing_grids(tmp_path: Path) -> None:
    path = write(tmp_path, "# 社区配置", 'name = "幸福里社区"', 'timezone = "Asia/Shanghai"')
    error = load_error(path)
    assert str(error) == f"{path}:1: grids: required key is missing"


def test_missing_key_in_grid_points_at_its_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[[grids]]",  # 8
        'key = "g2"',  # 9
        'buildings = ["7"]',  # 10
    )
    error = load_error(path)
    assert str(error) == f"{path}:8: grids[1].name: required key is missing"


def test_bad_language(tmp_path: Path) -> None:
    path = write(tmp_path, *MINIMAL[:1], 'default_language = "fr"', *MINIMAL[1:])
    error = load_error(path)
    assert (
        str(error) == f"{path}:2: default_language: unknown language 'fr'; expected one of zh_CN, en, zh_TW"
    )


def test_bad_language_in_category_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[[categories]]",  # 8
        'key = "road"',  # 9
        "",  # 10
        "[[categories]]",  # 11
        'key = "fire"',  # 12
        "[categories.names]",  # 13
        'zh_CN = "消防隐患"',  # 14
        'fr = "Incendie"',  # 15
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}:15: categories[1].names.fr: unknown language 'fr'; expected one of zh_CN, en, zh_TW"
    )


def test_escalation_order_uses_default_and_points_at_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "",  # 7
        "[escalation]",  # 8
        "urgent_ack_minutes = 45",  # 9
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}:8: escalation.urgent_escalate_minutes: must be greater than urgent_ack_minutes (45); "
        "escalation comes after the reminder"
    )


def test_sub_table_and_dotted_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        *MINIMAL,
        "[grids.center]",  # 7
        "lat = 31.2",  # 8
        "lon = 200",  # 9
        "",  # 10
        "[[grids]]",  # 11
        'key = "g2"',  # 12
        'name = "二"',  # 13
        'buildings = ["3"]',  # 14
        "center.lat = 95",  # 15
        "center.lon = 121",  # 16
    )
    error = load_error(path)
    assert error.problems == (
        f"{path}:9: grids[0].center.lon: Input should be less than or equal to 180",
        f"{path}:15: grids[1].center.lat: Input should be less than or equal to 90",
    )


def test_every_error_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'timezone = "Nowhere/City"',  # 1
        'default_language = "de"',  # 2
        "radius_m = -1",  # 3
        "",  # 4
        "[limits]",  # 5
        "max_photos = 1.5",  # 6
        "",  # 7
        "[[grids]]",  # 8
        'key = "G 1"',  # 9
        'name = "一"',  # 10
        "buildings = []",  # 11
    )
    error = load_error(path)
    lines = str(error).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{path}:1",  # name missing
        f"{path}:1",
        f"{path}:2",
        f"{path}:3",
        f"{path}:6",
        f"{path}:9",
        f"{path}:11",
    ]
    assert lines[0] == f"{path}:1: name: required key is missing"
    assert lines[1].startswith(f"{path}:1: timezone: unknown time zone 'Nowhere/City'")
    assert lines[3] == f"{path}:3: radius_m: Input should be greater than 0"
    assert lines[4].startswith(f"{path}:6: limits.max_photos: Input should be a valid integer")
    assert lines[5] == (
        f"{path}:9: grids[0].key: 'G 1' is not a valid key: use lowercase letters, digits, '_' or '-'"
    )
    assert (
        lines[6] == f"{path}:11: grids[0].buildings: List should have at least 1 item after validation, not 0"
    )
    assert error.problems == tuple(lines)


def test_multiline_strings_and_arrays_do_not_confuse_line_finding(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = """幸福里',  # 1
        "[[grids]]",  # 2  (inside the string)
        'key = "g1"',  # 3  (inside the string)
        '"""',  # 4
        "",  # 5
        "[[grids]]",  # 6
        'key = "g1"',  # 7
        'name = "一 # not a comment"',  # 8
        "buildings = [  # building numbers",  # 9
        '    "[1]",',  # 10
        '    "key = 2",',  # 11
        "]",  # 12
        "",  # 13
        "[[grids]]",  # 14
        "'key' = 'g1'",  # 15
        'name = "二"',  # 16
        'buildings = ["9"]',  # 17
    )
    error = load_error(path)
    assert str(error) == f"{path}:15: grids[1].key: grid key 'g1' is already used by grids[0]"
