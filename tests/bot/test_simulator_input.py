"""Coordinates typed in the simulator get the same polite answer as a bad location from a platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


def test_typed_coordinates_off_the_globe_are_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "s.script"
    lines = [
        "/as 王阿姨",
        "/report",
        "2",
        "1",
        "3号楼楼道里堆满了纸箱",
        "1",
        "/location 91 121",
        "/location nan nan",
    ]
    script.write_text("\n".join([*lines, "/location 31.2292 121.4721"]) + "\n", encoding="utf-8")
    assert main(["simulate", "--script", str(script)]) == 0
    out = capsys.readouterr().out
    assert out.count("经纬度超出了范围") == 2 and out.count("📍 隐患在哪里？") == 3
    assert "31.22920" in out and "Traceback" not in out
