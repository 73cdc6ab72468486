"""The tutorials (docs/tutorials/, jupytext percent scripts) run as written, at small sizes."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO

TUTORIALS = sorted((REPO / "docs" / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXPE_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("MIXPE_TUTORIAL_MODEL", str(DATA / "tiny-llama.json"))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")


def test_tutorials_are_notebooks_too() -> None:
    jupytext = pytest.importorskip("jupytext")
    assert len(TUTORIALS) >= 4
    for path in TUTORIALS:
        notebook = jupytext.read(path)
        assert sum(cell.cell_type == "markdown" for cell in notebook.cells) >= 2
        assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 3
