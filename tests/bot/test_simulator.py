"""`shouwang simulate --script` runs the README's demo from start to finish."""

from __future__ import annotations

from pathlib import Path

from bot.cli import main

DEMO = Path(__file__).resolve().parents[2] / "docs" / "demo.script"


def test_demo_script_transcript(tmp_path: Path, capsys: object, monkeypatch: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[attr-defined]
    assert main(["simulate", "--script", str(DEMO)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "#2026-0001" in out and "#2026-0002" in out
    # The reporter heard of every step and was asked to rate.
    assert "[王阿姨] ✅ 上报成功！编号：#2026-0001" in out
    assert "已办结" in out and "5⭐" in out
    # The group card was edited in place, the unattended urgent report escalated.
    assert "✎ #2 [警务群 police group]" in out
    assert "#2026-0002 已上报 16 分钟" in out
    assert "Traceback" not in out
    # Nothing was written next to the caller: the simulator works in a scratch directory.
    assert not (tmp_path / "data").exists()


def test_simulator_rejects_unknown_person(tmp_path: Path, capsys: object) -> None:
    script = tmp_path / "s.script"
    script.write_text("/as 不存在\n/wait soon\n", encoding="utf-8")
    assert main(["simulate", "--script", str(script)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "unknown person" in out and "/wait takes a duration" in out
