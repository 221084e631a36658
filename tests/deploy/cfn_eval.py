"""A small evaluator of CloudFormation conditions for the endpoint template (which has no SAM or
language-extensions transform to run it through): with parameter values it decides every
condition, drops resources and outputs whose condition is false, picks the branch of every
Fn::If, removes AWS::NoValue and resolves Ref to parameters and Fn::FindInMap. Everything else
(Fn::GetAtt, Fn::Sub, Fn::Join, ...) is left as it is, for the tests to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.deploy.conftest import load_cfn

NO_VALUE = object()
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


class Evaluator:
    def __init__(self, template: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.template = template
        self.params: dict[str, Any] = {
            name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(overrides) - set(self.params)
        assert not unknown, f"not parameters of the template: {unknown}"
        self.params.update(overrides)
        for name, value in self.params.items():
            allowed = template["Parameters"][name].get("AllowedValues")
            if allowed is not None:
                assert value in allowed, f"{name}={value!r} is not one of {allowed}"
        self.params.update(PSEUDO)
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def value(self, node: Any) -> Any:
        """Evaluate intrinsic functions that need only parameter values."""
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.params:
                    return self.params[arg]
                return node  # a resource
            if key in ("Condition", "Fn::Condition"):
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                left, right = (self.value(item) for item in arg)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self.value(item) for item in arg)
            if key == "Fn::Or":
                return any(self.value(item) for item in arg)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::FindInMap":
                mapping, top, second = (self.value(item) for item in arg)
                return self.template["Mappings"][mapping][str(top)][str(second)]
        result = {}
        for key, item in node.items():
            evaluated = self.value(item)
            if evaluated is not NO_VALUE:
                result[key] = evaluated
        return result

    def resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Resources": {}, "Outputs": {}}
        for section in ("Resources", "Outputs"):
            for name, body in self.template.get(section, {}).items():
                if "Condition" in body and not self.condition(body["Condition"]):
                    continue
                out[section][name] = self.value(body)
        return out


def resolve(path: Path, **overrides: Any) -> dict[str, Any]:
    """The template as CloudFormation would create it with these parameter values."""
    return Evaluator(load_cfn(path), overrides).resolved()


def refused_by(template: dict[str, Any], overrides: dict[str, Any]) -> set[str]:
    """The Rules whose assertions fail for these parameter values, as CloudFormation checks
    them before it creates anything: rule functions over the values as strings (a
    CommaDelimitedList as a list of strings)."""
    params: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = overrides.get(name, spec.get("Default"))
        if spec.get("Type") == "CommaDelimitedList":
            params[name] = [item.strip() for item in str(value or "").split(",")]
        else:
            params[name] = "" if value is None else str(value)
    unknown = set(overrides) - set(params)
    assert not unknown, f"not parameters of the template: {unknown}"

    def value(node: Any) -> Any:
        if isinstance(node, list):
            return [value(item) for item in node]
        if not isinstance(node, dict):
            return node if isinstance(node, str) else str(node).lower()
        ((key, arg),) = node.items()
        if key == "Ref":
            return params[arg]
        if key == "Fn::Equals":
            left, right = value(arg)
            return left == right
        if key == "Fn::Not":
            return not value(arg[0])
        if key == "Fn::And":
            assert 2 <= len(arg) <= 10, node  # CloudFormation's bounds
            return all(value(item) for item in arg)
        if key == "Fn::Or":
            assert 2 <= len(arg) <= 10, node
            return any(value(item) for item in arg)
        if key == "Fn::Contains":
            choices, item = value(arg)
            return item in choices
        if key == "Fn::EachMemberEquals":
            items, item = value(arg)
            return all(member == item for member in items)
        raise AssertionError(f"{key} is not a rule function")  # e.g. Fn::Join, Fn::FindInMap

    refused = set()
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not value(rule["RuleCondition"]):
            continue
        if not all(value(a["Assert"]) for a in rule["Assertions"]):
            refused.add(name)
    return refused
