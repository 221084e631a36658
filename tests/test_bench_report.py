"""``make bench``'s report: it rewrites only its own part of docs/benchmarks.md, and its cold-start
ratios are medians of paired runs. ``bench/run.py`` is loaded from its path (it is a script)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"
spec = importlib.util.spec_from_file_location("bench_run_report", RUN)
assert spec is not None and spec.loader is not None
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def test_the_report_replaces_only_what_lies_between_the_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"# Benchmarks\n\n{run.DOC_START}\nold figures\n\n{run.DOC_END}\n\n## Budgets\nby hand\n"
    )
    monkeypatch.setattr(run, "DOC", doc)
    run.write_doc("new figures\n\n| a | b |\n")
    run.write_doc("newer figures\n")  # twice: the markers survive their own rewrite
    assert doc.read_text() == (
        f"# Benchmarks\n\n{run.DOC_START}\nnewer figures\n\n{run.DOC_END}\n\n## Budgets\nby hand\n"
    )


def test_the_report_refuses_a_file_without_its_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nwritten by hand\n")
    monkeypatch.setattr(run, "DOC", doc)
    with pytest.raises(SystemExit):
        run.write_doc("figures\n")
    assert doc.read_text() == "# Benchmarks\n\nwritten by hand\n"


def test_cold_start_ratio_is_the_median_of_paired_runs() -> None:
    # A quiet run and a busy run: each run's gateway is compared with that run's bare stack.
    report = {
        "processes": {
            "paired_ratios": {"gateway": {"mangum": {"median": 1.05, "runs": [1.0, 1.1]}}},
            "gateway": {"mangum_cold_s": 0.9},
            "bare": {"mangum_cold_s": 0.5},
        }
    }
    assert run.cold_ratio(report, "gateway", "mangum") == 1.05
    # reports from before paired runs: the ratio of the medians
    del report["processes"]["paired_ratios"]
    assert run.cold_ratio(report, "gateway", "mangum") == pytest.approx(1.8)
