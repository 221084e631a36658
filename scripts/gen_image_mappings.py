#!/usr/bin/env python3
"""Regenerate the image Mappings and the container version parameters (TgiVersion,
LmiVersion, VllmVersion, SglangVersion) of endpoint/template.yaml from the SageMaker SDK registry
files in src/llm_gateway/deploy/data/ (their sources: data/SOURCES.md).

Usage: .venv/bin/python scripts/gen_image_mappings.py [--check]

To take a newer registry: copy the SDK's image_uri_config/<file>.json over the data file, run
this script, and commit both. ``--check`` exits 1 if the template is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from llm_gateway.deploy.mappings import render_template, update_template  # noqa: E402

TEMPLATE = ROOT / "endpoint" / "template.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the template is stale")
    args = parser.parse_args()
    if args.check:
        text = TEMPLATE.read_text(encoding="utf-8")
        if render_template(text) != text:
            print(f"{TEMPLATE} is stale: run scripts/gen_image_mappings.py", file=sys.stderr)
            return 1
        print(f"{TEMPLATE} is up to date")
        return 0
    changed = update_template(TEMPLATE)
    print(f"{TEMPLATE} {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
