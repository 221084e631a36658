#!/usr/bin/env python3
"""Print the CloudFormation that a SAM template becomes, offline, as JSON.

Runs the same two transforms CloudFormation runs for template.yaml, in the same order:
AWS::LanguageExtensions (SAM CLI's local implementation, with the given parameter values) and
then AWS::Serverless-2016-10-31 (aws-sam-translator). Local artifact paths are replaced by
placeholder S3 locations, as `sam validate` does. Two differences from SAM CLI's expander, so
that the rendering says what CloudFormation would create:

- an ``Fn::Sub`` it cannot finish (``${GatewayApi}``, ``${Function}`` bound to a ``Ref``) stays an
  ``Fn::Sub`` holding what is left, instead of becoming a string with a literal ``${…}`` in it;
- an ``Fn::Join`` over an item it cannot resolve (``!Select`` of ``AWS::StackId``) stays an
  ``Fn::Join`` instead of pasting Python's ``str()`` of the item into a string;
- ``!GetAtt <NestedStack>.Outputs.<Name>`` of a nested stack whose template is a local file is
  answered from that template's Outputs, rendered with the parameters the parent passes it;
- conditions are decided, as CloudFormation decides them: resources and outputs whose
  condition is false are left out (the expander already dropped the references to them), the
  others lose their ``Condition``.

A template without the SAM transform (endpoint/template.yaml) gets the language-extensions pass
only (conditions decided, parameters and mappings resolved). Needs the SAM CLI's environment:

    .venv-sam/bin/python scripts/sam_transform.py [--template T] [Name=Value ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
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
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
SCALAR = (str, int, float, bool)


class _PolicyLoader:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def _keep_unfinished_subs() -> None:
    """Make SAM CLI's Fn::Sub resolver return an Fn::Sub when placeholders remain.

    Its own resolver substitutes what it can and returns a plain string, so ``${GatewayApi}``
    ends up as literal text (cfn-lint E1029) and a variable bound to a ``Ref`` is pasted in as
    Python's ``str()`` of the dict. Here what it can resolve is substituted, the rest stays a
    placeholder inside ``Fn::Sub`` (with the variables that are still intrinsics), and the
    ``${!Literal}`` escapes are undone only once nothing is left to substitute.
    """
    from samcli.lib.cfn_language_extensions.resolvers.fn_sub import FnSubResolver

    def resolve(self: Any, value: dict[str, Any]) -> Any:
        text, variables = self._parse_args(self.get_function_args(value))
        resolved = self._resolve_variable_map(variables)
        kept: dict[str, Any] = {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return match.group(0)
            found = resolved[name] if name in resolved else self._resolve_variable(name, {})
            if isinstance(found, SCALAR):
                return str(self._value_to_string(found))
            if found is not None:
                kept[name] = found
            return match.group(0)

        out = PLACEHOLDER.sub(replace, text)
        if any(not m.group(1).startswith("!") for m in PLACEHOLDER.finditer(out)):
            return {"Fn::Sub": [out, kept] if kept else out}
        return PLACEHOLDER.sub(lambda m: "${" + m.group(1)[1:] + "}", out)

    FnSubResolver.resolve = resolve  # type: ignore[method-assign]

    from samcli.lib.cfn_language_extensions.resolvers.fn_join import FnJoinResolver

    join = FnJoinResolver.resolve

    def resolve_join(self: Any, value: dict[str, Any]) -> Any:
        args = self.get_function_args(value)
        if isinstance(args, list) and len(args) == 2:
            items = self.parent.resolve_value(args[1]) if self.parent is not None else args[1]
            if isinstance(items, list) and any(isinstance(i, dict) for i in items):
                return {"Fn::Join": [args[0], items]}
        return join(self, value)

    if getattr(FnJoinResolver.resolve, "__name__", "") != "resolve_join":
        FnJoinResolver.resolve = resolve_join  # type: ignore[method-assign]


def _decided(template: dict[str, Any]) -> dict[str, Any]:
    """Leave out what a false condition removes; drop the decided ``Condition`` keys."""
    conditions = template.get("Conditions") or {}
    cache: dict[str, bool] = {}

    def truth(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Condition":
                return decide(arg)
            if key == "Fn::Equals":
                left, right = (truth(item) for item in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not truth(arg[0])
            if key == "Fn::And":
                return all(truth(item) for item in arg)
            if key == "Fn::Or":
                return any(truth(item) for item in arg)
            raise SystemExit(f"cannot decide a condition on {node}")
        return node

    def decide(name: str) -> bool:
        if name not in cache:
            cache[name] = bool(truth(conditions[name]))
        return cache[name]

    for section in ("Resources", "Outputs"):
        kept = {}
        for name, body in (template.get(section) or {}).items():
            if isinstance(body, dict) and "Condition" in body:
                if not decide(body["Condition"]):
                    continue
                body = {k: v for k, v in body.items() if k != "Condition"}
            kept[name] = body
        template[section] = kept
    return template


def _pseudo_parameters() -> Any:
    from samcli.lib.cfn_language_extensions.models import PseudoParameterValues

    return PseudoParameterValues(
        region=PSEUDO["AWS::Region"],
        account_id=PSEUDO["AWS::AccountId"],
        stack_name=PSEUDO["AWS::StackName"],
        partition=PSEUDO["AWS::Partition"],
        url_suffix=PSEUDO["AWS::URLSuffix"],
    )


def _parameters(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        name: spec["Default"]
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }
    params.update(overrides)
    return params


def render_plain(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """A template without the SAM transform, after the language-extensions pass."""
    from samcli.lib.cfn_language_extensions.api import process_template
    from samcli.yamlhelper import yaml_parse

    _keep_unfinished_subs()
    template = yaml_parse(path.read_text(encoding="utf-8"))
    unknown = set(overrides) - set(template.get("Parameters") or {})
    if unknown:
        raise SystemExit(f"{path.name}: not parameters of the template: {sorted(unknown)}")
    result: dict[str, Any] = process_template(
        template, _parameters(template, overrides), _pseudo_parameters()
    )
    return _decided(result)


def _nested_stacks(template: dict[str, Any], base: Path) -> dict[str, Path]:
    """Logical id → local template of every AWS::Serverless::Application with a file Location."""
    found = {}
    for name, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Application":
            location = (resource.get("Properties") or {}).get("Location")
            if isinstance(location, str) and (base / location).is_file():
                found[name] = base / location
    return found


def _answer_nested_outputs(node: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    """Replace ``Fn::GetAtt [Stack, Outputs.Name]`` with the child's rendered output value."""
    if isinstance(node, list):
        return [_answer_nested_outputs(item, outputs) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        stack, attribute = target[0], target[1] if len(target) > 1 else ""
        if stack in outputs and isinstance(attribute, str) and attribute.startswith("Outputs."):
            name = attribute.removeprefix("Outputs.")
            if name in outputs[stack]:  # else the child has no such output with these
                return outputs[stack][name]  # parameters: an Fn::If branch left unused
    return {key: _answer_nested_outputs(value, outputs) for key, value in node.items()}


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

    _keep_unfinished_subs()
    template = yaml_parse(path.read_text(encoding="utf-8"))
    if "AWS::Serverless-2016-10-31" not in json.dumps(template.get("Transform", "")):
        return render_plain(path, overrides)
    nested = _nested_stacks(template, path.parent)
    _placeholder_artifacts(template)
    params = _parameters(template, overrides)
    params.update(PSEUDO)
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])

    def expand(source: dict[str, Any]) -> dict[str, Any]:
        result = expand_language_extensions(copy.deepcopy(source), params, enabled=True)
        expanded: dict[str, Any] = result.expanded_template
        return expanded

    if nested:  # first pass: the parameters each nested stack receives
        first = expand(template)
        outputs = {}
        for name, child in nested.items():
            passed = (first["Resources"][name].get("Properties") or {}).get("Parameters") or {}
            passed = {k: v for k, v in passed.items() if isinstance(v, SCALAR)}
            rendered = render_plain(child, passed).get("Outputs") or {}
            outputs[name] = {key: body["Value"] for key, body in rendered.items()}
        template = _answer_nested_outputs(template, outputs)
    return _decided(transform(expand(template), params, _PolicyLoader()))


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
