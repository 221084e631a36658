#!/usr/bin/env python3
"""Print the CloudFormation that a SAM template becomes, offline, as JSON.

Runs the same two transforms CloudFormation runs for template.yaml, in the same order:
AWS::LanguageExtensions (SAM CLI's local implementation, with the given parameter values) and
then AWS::Serverless-2016-10-31 (aws-sam-translator). Local artifact paths are replaced by
placeholder S3 locations, as `sam validate` does. Needs the SAM CLI's environment:

    .venv-sam/bin/python scripts/sam_transform.py [--template T] [Name=Value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "llm-gateway-test",
    "AWS::URLSuffix": "amazonaws.com",
}
# What `sam validate` uses for managed policy names; only these two can appear here.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


class _PolicyLoader:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def _placeholder_artifacts(template: dict[str, Any]) -> None:
    for name, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            continue
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://artifacts/{name}.zip"
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = f"s3://artifacts/{name}.zip"
        elif kind == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            props["Location"] = f"https://s3.amazonaws.com/artifacts/{name}.template"


def transform_template(path: Path, overrides: dict[str, str]) -> dict[str, Any]:
    from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    template = yaml_parse(path.read_text(encoding="utf-8"))
    _placeholder_artifacts(template)
    params: dict[str, Any] = {
        name: spec["Default"]
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }
    params.update(overrides)
    params.update(PSEUDO)
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])
    expanded = expand_language_extensions(template, params, enabled=True).expanded_template
    return transform(expanded, params, _PolicyLoader())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("overrides", nargs="*", metavar="Name=Value")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides)
    json.dump(transform_template(Path(args.template), overrides), sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
