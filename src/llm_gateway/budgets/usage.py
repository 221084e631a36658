"""``llm-gateway usage``: each key's, user's and tenant's tokens per day, and their share of
the endpoint's cost.

Rows are keys (their bare ids), signed-in users (``user:<sub>``) and tenants
(``tenant:<id>``). A tenant's row sums its users' requests, so it is left out of the day's
total: shares and costs of keys and users add up to the day, and a tenant's share is the part
of the day its users had.

Cost is apportioned per day by tokens: a key's share of that day's tokens (input plus
generated, generated weighted by ``generated_weight`` since decoding costs more GPU time per
token than prefill) times the day's endpoint cost, ``hourly price × instances × 24``. That
models an always-on endpoint; for one that scales to zero, pass the real hourly average.
Idle time is spread over the keys that used the endpoint that day.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from llm_gateway.budgets.table import DayUsage


@dataclass(frozen=True)
class Prices:
    prices: dict[str, float]
    source: str
    recorded: str
    region: str


def price_table() -> Prices:
    raw: dict[str, Any] = json.loads(
        resources.files("llm_gateway.budgets").joinpath("prices.json").read_text("utf-8")
    )
    return Prices(
        {k: float(v) for k, v in raw["prices"].items()},
        raw["source"],
        raw["recorded"],
        raw["region"],
    )


def hourly_price(instance_type: str) -> float:
    """The shipped on-demand price of an instance type; ValueError names the known ones."""
    table = price_table()
    if instance_type not in table.prices:
        known = ", ".join(sorted(table.prices))
        raise ValueError(
            f"no price for {instance_type!r} in the shipped table ({known}); "
            "pass --endpoint-cost-per-hour instead"
        )
    return table.prices[instance_type]


@dataclass(frozen=True)
class ReportRow:
    day: str
    key_id: str
    key_name: str
    requests: int
    failed: int
    input_tokens: int
    generated_tokens: int
    share: float | None  # of that day's weighted tokens
    cost: float | None


def report(
    rows: list[DayUsage],
    *,
    names: dict[str, str] | None = None,
    cost_per_hour: float | None = None,
    instances: int = 1,
    generated_weight: float = 1.0,
) -> list[ReportRow]:
    names = names or {}

    def weight(row: DayUsage) -> float:
        return row.input_tokens + generated_weight * row.generated_tokens

    totals: dict[str, float] = {}
    for row in rows:
        if not row.key_id.startswith("tenant:"):  # its users' rows already count it
            totals[row.day] = totals.get(row.day, 0.0) + weight(row)
    out = []
    for row in sorted(rows, key=lambda r: (r.day, r.key_id)):
        total = totals.get(row.day, 0.0)
        share = weight(row) / total if total else 0.0
        cost = None if cost_per_hour is None else round(cost_per_hour * instances * 24 * share, 4)
        out.append(
            ReportRow(
                row.day,
                row.key_id,
                names.get(row.key_id, ""),
                row.requests,
                row.failed,
                row.input_tokens,
                row.generated_tokens,
                round(share, 6),
                cost,
            )
        )
    return out


COLUMNS = [
    "day",
    "key_id",
    "key_name",
    "requests",
    "failed",
    "input_tokens",
    "generated_tokens",
    "share",
    "cost",
]


def render(rows: list[ReportRow], fmt: str, *, with_cost: bool) -> str:
    columns = [c for c in COLUMNS if with_cost or c != "cost"]
    records = [{c: asdict(row)[c] for c in columns} for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    header = [c.upper().replace("_", " ") for c in columns]
    cells = [[_cell(r[c]) for c in columns] for r in records]
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    if not records:
        lines.append("(no usage recorded in this period)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value in (None, "") else str(value)
