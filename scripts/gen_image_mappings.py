#!/usr/bin/env python3
"""Regenerate the image Mappings and the container version parameters (TgiVersion,
LmiVersion, VllmVersion, SglangVersion) of endpoint/template.yaml from the SageMaker SDK registry
files in src/llm_gateway/deploy/data/ (their sources: data/SOURCES.md), and the capacity parts of
both templates (instance types, their GPU counts, the Rules) from llm_gateway.deploy.capacity.

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

from llm_gateway.deploy.mappings import (  # noqa: E402
    BLOCKS,
    GATEWAY_BLOCKS,
    render_template,
    update_template,
)

TEMPLATE = ROOT / "endpoint" / "template.yaml"
TEMPLATES = {TEMPLATE: BLOCKS, ROOT / "template.yaml": GATEWAY_BLOCKS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the template is stale")
    args = parser.parse_args()
    stale = 0
    for template, blocks in TEMPLATES.items():
        if args.check:
            text = template.read_text(encoding="utf-8")
            if render_template(text, blocks) != text:
                print(f"{template} is stale: run scripts/gen_image_mappings.py", file=sys.stderr)
                stale = 1
            else:
                print(f"{template} is up to date")
        else:
            changed = update_template(template, blocks)
            print(f"{template} {'updated' if changed else 'already up to date'}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
