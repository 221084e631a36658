"""Write docs/faults.md from tests/fault_matrix.py (``--check``: fail if it is out of date)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fault_matrix import DISCONNECT, ROWS, K  # noqa: E402

HEADER = f"""# Fault matrix

What a client receives when the upstream fails, per dialect and mode, which metric counts it,
and what the request's log line says. Every row is a test (`tests/test_fault_matrix.py`) driven
by the emulator's fault injection; this page is generated from the same table
(`python scripts/gen_fault_matrix.py`), so it cannot drift from what is tested.

- *TGI* columns: `POST /generate` (buffered) and `/generate_stream`; errors are
  `{{"error", "error_type"}}`. *OpenAI* columns: `POST /v1/chat/completions` with
  `stream: false/true`; errors are `{{"error": {{"message", "type", "param", "code"}}}}`.
- A failure known before the first token is a plain HTTP error with that status (the gateway
  waits up to `GATEWAY_STREAM_COMMIT_SECONDS` for the first token before committing 200).
  After that it is one error event and the stream ends (OpenAI: then `data: [DONE]`).
- In-stream faults strike after {K} tokens. "—" means the combination cannot happen:
  InvokeEndpoint is not streamed, so stream faults never reach buffered TGI calls; the
  OpenAI dialect always streams upstream (that is where exact prompt-token counts come from).
- Logged: the request's JSON log line carries `status`, `error_type`, `error_kind` (client,
  upstream, throttled, timeout, stream) and `error_in_stream`; level WARNING for 4xx, ERROR
  for 5xx. Retries happen only before anything reached the client and only for failures that
  cannot have generated anything (throttling, not ready, unavailable, no connection, TGI
  overloaded), within the request's deadline.

| Upstream failure | How it is produced | TGI buffered | TGI stream | OpenAI buffered | OpenAI stream | Metric | Notes |
|---|---|---|---|---|---|---|---|
"""


def cell(outcome, dialect: str) -> str:
    return "—" if outcome is None else outcome.describe(dialect)


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    for row in ROWS:
        lines.append(
            f"| {row.name} | {row.how} | {cell(row.tgi, 'tgi')} | {cell(row.tgi_stream, 'tgi')} | "
            f"{cell(row.openai, 'openai')} | {cell(row.openai_stream, 'openai')} | "
            f"`{row.metric}` | {row.notes} |".replace("`—`", "—")
        )
    name, how, outcome, metric = DISCONNECT
    lines.append(f"| {name} | {how} | — | {outcome} | — | {outcome} | `{metric}` | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    target = ROOT / "docs" / "faults.md"
    text = render()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run python scripts/gen_fault_matrix.py")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
