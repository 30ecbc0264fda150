"""Benchmarks find the shared corpus from a main checkout and from a git worktree alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._corpus import corpus_dir


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """`/work` as it is laid out: the corpus, the main checkout and a worktree two levels deeper."""
    (tmp_path / "shared" / "corpus" / "stripe").mkdir(parents=True)
    for checkout in ("main", "wt/loose"):
        (tmp_path / checkout / "bench").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("checkout", ["main", "wt/loose"])
def test_the_corpus_is_found_above_a_checkout_or_a_worktree(machine, checkout, monkeypatch):
    monkeypatch.delenv("CHARTER_CORPUS", raising=False)
    script = machine / checkout / "bench" / "publish.py"
    assert corpus_dir(script) == (machine / "shared" / "corpus").resolve()


def test_charter_corpus_comes_first_and_must_exist(machine, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("CHARTER_CORPUS", str(elsewhere))
    assert corpus_dir(machine / "main" / "bench" / "publish.py") == elsewhere
    monkeypatch.setenv("CHARTER_CORPUS", str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match=r"CHARTER_CORPUS=.* is not a directory"):
        corpus_dir(machine / "main" / "bench" / "publish.py")


def test_no_corpus_says_how_to_name_one(tmp_path, monkeypatch):
    monkeypatch.delenv("CHARTER_CORPUS", raising=False)
    (tmp_path / "lone" / "bench").mkdir(parents=True)
    with pytest.raises(SystemExit, match="set CHARTER_CORPUS"):
        corpus_dir(tmp_path / "lone" / "bench" / "publish.py")
