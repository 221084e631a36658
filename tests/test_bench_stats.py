"""The benchmark's statistic for *added* time (issue 12, item 14).

``bench/run.py`` is a script, not a package: it is loaded from its path. Loading it must not
start servers or touch the network.
"""

from __future__ import annotations

import importlib.util
import random
import statistics
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def load_run():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = load_run()


def test_added_is_percentiles_of_per_round_differences() -> None:
    # Direct calls are slow exactly when the gateway's are: the gateway adds 1 ms every round.
    direct = [0.001 * (1 + i % 7) + (0.050 if i % 20 == 0 else 0) for i in range(200)]
    gateway = [d + 0.001 for d in direct]
    assert run.added(gateway, direct) == {"median_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0}


def test_added_is_ordered_where_the_difference_of_percentiles_is_not() -> None:
    # The old statistic (p99 of one path minus p99 of the other) can come out below its p95.
    direct = [0.001] * 90 + [0.002] * 5 + [0.010] * 5
    gateway = [0.0015] * 90 + [0.0035] * 5 + [0.0105] * 5
    old_p95 = run.percentile(gateway, 95) - run.percentile(direct, 95)
    old_p99 = run.percentile(gateway, 99) - run.percentile(direct, 99)
    assert old_p99 < old_p95
    new = run.added(gateway, direct)
    assert new["median_ms"] == 0.5
    assert new["median_ms"] <= new["p95_ms"] <= new["p99_ms"]
    assert new["p99_ms"] == 1.5


def test_added_is_ordered_for_any_sample() -> None:
    rng = random.Random(14)
    for _ in range(200):
        n = rng.randint(1, 400)
        direct = [rng.lognormvariate(-6.5, 0.4) for _ in range(n)]
        path = [d + rng.lognormvariate(-7, 1.0) - 0.0005 for d in direct]
        out = run.added(path, direct)
        assert out["median_ms"] <= out["p95_ms"] <= out["p99_ms"]
        assert out["median_ms"] == round(
            statistics.median(p - d for p, d in zip(path, direct, strict=True)) * 1000, 3
        )


def test_percentile_is_the_median_at_50_and_interpolates() -> None:
    assert run.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5
    assert run.percentile([1.0, 2.0], 0) == 1.0
    assert run.percentile([1.0, 2.0], 100) == 2.0
    assert run.percentile([5.0], 99) == 5.0


def test_unpaired_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="unpaired"):
        run.added([0.001, 0.002], [0.001])
