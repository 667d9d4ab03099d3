"""The benchmarks find LoCoMo where a clone has it, and say where it comes from when it is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "locomo.py"), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_a_missing_dataset_says_where_to_get_it(tmp_path: Path) -> None:
    done = _run("--data", str(tmp_path / "nowhere.json"))
    assert done.returncode != 0
    assert "snap-research/LoCoMo" in done.stderr and "CC BY-NC 4.0" in done.stderr
    assert "--data" in done.stderr and "ENGRAM_LOCOMO" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_dataset_is_found_through_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "locomo10.json"
    data.write_text("[]")
    monkeypatch.setenv("ENGRAM_LOCOMO", str(data))
    monkeypatch.syspath_prepend(str(BENCH))
    import locomo

    assert locomo.locomo_path(None) == data
    assert locomo.locomo_path(data) == data
