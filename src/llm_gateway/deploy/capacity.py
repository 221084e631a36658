"""What a GPU endpoint can hold, and the template ``Rules`` that refuse what it cannot.

CloudFormation ``Rules`` have no arithmetic (only equality, membership and boolean logic), so a
check such as "MaxCopies copies, twice over, fit on MaxInstanceCount instances" is written out
as one rule per case. ``scripts/gen_image_mappings.py`` writes these rules, the instance types
and their GPU counts into both templates (between ``BEGIN GENERATED`` markers) from the tables
here; :func:`refusals` is the same arithmetic in Python, which the tests compare with the
rules for every combination.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

#: SageMaker GPU instance types → GPUs per instance (AWS instance type pages).
INSTANCE_GPUS: Final[dict[str, int]] = {
    **{f"ml.g4dn.{size}": 1 for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "ml.g4dn.12xlarge": 4,
    **{
        f"ml.{family}.{size}": gpus
        for family in ("g5", "g6", "g6e")
        for size, gpus in (
            ("xlarge", 1),
            ("2xlarge", 1),
            ("4xlarge", 1),
            ("8xlarge", 1),
            ("16xlarge", 1),
            ("12xlarge", 4),
            ("24xlarge", 4),
            ("48xlarge", 8),
        )
    },
    "ml.p3.2xlarge": 1,
    "ml.p3.8xlarge": 4,
    "ml.p3.16xlarge": 8,
    "ml.p4d.24xlarge": 8,
    "ml.p4de.24xlarge": 8,
    "ml.p5.48xlarge": 8,
    "ml.p5e.48xlarge": 8,
    "ml.p5en.48xlarge": 8,
}
DEFAULT_INSTANCE: Final = "ml.g5.12xlarge"
DEFAULT_NUM_GPUS: Final = 4
MAX_GPUS: Final = 8  # NumGpus MaxValue
MAX_COPIES: Final = 8  # MaxCopies, MinCopies and InitialCopyCount MaxValue
MAX_MIN_INSTANCES: Final = 10  # MinInstanceCount MaxValue
#: An update of the component's model starts the new copies before it stops the old ones
#: (docs/scale-to-zero.md): the endpoint needs room for twice the copies it may run.
UPDATE_ROOM: Final = 2


def copies_per_instance(instance_type: str, num_gpus: int) -> int:
    return INSTANCE_GPUS[instance_type] // num_gpus


def refusals(
    *,
    instance_type: str = DEFAULT_INSTANCE,
    num_gpus: int = DEFAULT_NUM_GPUS,
    hosting_mode: str = "endpoint",
    min_instances: int = 1,
    max_instances: int = 2,
    min_copies: int = 0,
    max_copies: int = 1,
    initial_copies: int = 1,
    container: str = "tgi",
    quantize: str = "",
) -> list[str]:
    """What the endpoint stack's Rules refuse for these parameter values (empty: servable)."""
    found = []
    if num_gpus > INSTANCE_GPUS[instance_type]:
        found.append("gpus")
    if container != "tgi" and quantize:
        found.append("quantize")
    if hosting_mode == "endpoint" and min_instances > max_instances:
        found.append("instances")
    if hosting_mode == "inference-component":
        per_instance = copies_per_instance(instance_type, num_gpus)
        if per_instance and max_instances * per_instance < UPDATE_ROOM * max_copies:
            found.append("room")
        if min_copies > max_copies or initial_copies > max_copies:
            found.append("copies")
    return found


def _numbers(first: int, last: int) -> str:
    return "[" + ", ".join(f'"{n}"' for n in range(first, last + 1)) + "]"


def _types(gpus: int, extra: tuple[str, ...] = ()) -> str:
    names = [*extra, *(t for t, g in INSTANCE_GPUS.items() if g == gpus)]
    return "[" + ", ".join(f'"{name}"' for name in names) + "]"


def _per_instance_cases(
    per_instance: int, instance: str, gpus: str, defaults: bool
) -> Iterator[str]:
    """Conditions under which ``per_instance`` copies fit on one instance (one per GPU group).

    With ``defaults`` an empty parameter means the endpoint template's default (the nested
    stack gets no value and uses its own)."""
    for group in sorted(set(INSTANCE_GPUS.values())):
        counts = [n for n in range(1, MAX_GPUS + 1) if group // n == per_instance]
        if not counts:
            continue
        extra = ("",) if defaults and group == INSTANCE_GPUS[DEFAULT_INSTANCE] else ()
        numbers = _numbers(counts[0], counts[-1])
        if defaults and DEFAULT_NUM_GPUS in counts:  # "" is the default NumGpus
            numbers = numbers.replace("[", '["", ', 1)
        yield (
            f"!And [!Contains [{_types(group, extra)}, !Ref {instance}], "
            f"!Contains [{numbers}, !Ref {gpus}]]"
        )


def _desc(text: str) -> str:
    """A rule's AssertDescription, quoted (YAML would read ": " in it as a mapping)."""
    return "AssertDescription: " + json.dumps(text)


def _any(cases: list[str]) -> str:
    return cases[0] if len(cases) == 1 else f"!Or [{', '.join(cases)}]"


def render_instance_types(indent: str = "  ", empty: bool = False) -> str:
    """AllowedValues of an instance type parameter (``empty``: "" too, the child's default)."""
    names = ", ".join(['""', *INSTANCE_GPUS] if empty else INSTANCE_GPUS)
    return f"{indent}AllowedValues: [{names}]"


def render_gpu_mapping(indent: str = "  ") -> str:
    lines = [f"{indent}InstanceGpus:  # instance type -> GPUs per instance"]
    lines += [f'{indent}  {name}: {{Gpus: "{gpus}"}}' for name, gpus in INSTANCE_GPUS.items()]
    return "\n".join(lines)


def _room(copies: int, needed: int, per_instance: int) -> str:
    return (
        f"MaxCopies={copies} needs MaxInstanceCount>={needed} ({per_instance} per instance, "
        "and room to update: docs/scale-to-zero.md)."
    )


def _rule(indent: str, name: str, condition: str, assertion: str, description: str) -> list[str]:
    return [
        f"{indent}{name}:",
        f"{indent}  RuleCondition: {condition}",
        f"{indent}  Assertions:",
        f"{indent}    - Assert: {assertion}",
        f"{indent}      {_desc(description)}",
    ]


def _gpu_rules(
    indent: str, instance: str, gpus: str, defaults: bool, only_if: str = ""
) -> list[str]:
    lines = []
    for group in sorted(set(INSTANCE_GPUS.values()) - {MAX_GPUS}):
        extra = ("",) if defaults and group == INSTANCE_GPUS[DEFAULT_INSTANCE] else ()
        allowed = _numbers(1, group)
        if defaults and group >= DEFAULT_NUM_GPUS:  # "" is the default NumGpus
            allowed = allowed.replace("[", '["", ', 1)
        condition = f"!Contains [{_types(group, extra)}, !Ref {instance}]"
        lines += _rule(
            indent,
            f"{gpus}FitOn{group}GpuInstances",
            f"!And [{only_if}, {condition}]" if only_if else condition,
            f"!Contains [{allowed}, !Ref {gpus}]",
            f"{instance} has {group} GPU(s): {gpus} must be at most {group}.",
        )
    return lines


def render_endpoint_rules(indent: str = "  ") -> str:
    """The endpoint template's Rules."""
    lines = _gpu_rules(indent, "InstanceType", "NumGpus", defaults=False)
    lines += _rule(
        indent,
        "QuantizeIsForTgi",
        "!Not [!Equals [!Ref Container, tgi]]",
        '!Equals [!Ref Quantize, ""]',
        "Quantize applies to Container=tgi only.",
    )
    endpoint = "!Equals [!Ref HostingMode, endpoint]"
    component = "!Equals [!Ref HostingMode, inference-component]"
    for most in range(1, MAX_MIN_INSTANCES):
        lines += _rule(
            indent,
            f"MinInstancesAtMost{most}",
            f'!And [{endpoint}, !Equals [!Ref MaxInstanceCount, "{most}"]]',
            f"!Contains [{_numbers(1, most)}, !Ref MinInstanceCount]",
            "MinInstanceCount must not exceed MaxInstanceCount.",
        )
    for most in range(1, MAX_COPIES):
        lines += _rule(
            indent,
            f"CopiesAtMost{most}",
            f'!And [{component}, !Equals [!Ref MaxCopies, "{most}"]]',
            f"!And [!Contains [{_numbers(0, most)}, !Ref MinCopies], "
            f"!Contains [{_numbers(1, most)}, !Ref InitialCopyCount]]",
            "MinCopies and InitialCopyCount must not exceed MaxCopies.",
        )
    for group in sorted(set(INSTANCE_GPUS.values())):
        for gpus in range(1, group + 1):
            per_instance = group // gpus
            checks = []
            for copies in range(1, MAX_COPIES + 1):
                needed = -(-UPDATE_ROOM * copies // per_instance)  # instances, rounded up
                if needed > 1:
                    checks += [
                        f'    - Assert: !Or [!Not [!Equals [!Ref MaxCopies, "{copies}"]], '
                        f"!Not [!Contains [{_numbers(1, needed - 1)}, !Ref MaxInstanceCount]]]",
                        f"      {_desc(_room(copies, needed, per_instance))}",
                    ]
            lines += [
                f"{indent}RoomForCopiesOn{group}GpuInstancesAt{gpus}GpusEach:",
                f"{indent}  RuleCondition: !And [{component}, "
                f"!Contains [{_types(group)}, !Ref InstanceType], "
                f'!Equals [!Ref NumGpus, "{gpus}"]]',
                f"{indent}  Assertions:",
                *(f"{indent}{line}" for line in checks),
            ]
    return "\n".join(lines)


def nested_refusals(
    *,
    deploy: bool,
    hosting_mode: str = "",
    instance_type: str = "",
    num_gpus: str = "",
    min_instances: str = "",
    max_instances: str = "",
    container: str = "",
    quantize: str = "",
) -> list[str]:
    """What the gateway stack's Rules refuse for its Endpoint* parameters ("" = the endpoint
    template's default), so that the nested stack never fails after the gateway's resources
    were created. MaxCopies and the copy counts are the endpoint template's defaults there."""
    if not deploy:
        return []
    found = ["min-instances"] if hosting_mode == "inference-component" and min_instances else []
    found += refusals(
        instance_type=instance_type or DEFAULT_INSTANCE,
        num_gpus=int(num_gpus or DEFAULT_NUM_GPUS),
        hosting_mode=hosting_mode or "endpoint",
        min_instances=int(min_instances or 1),
        max_instances=int(max_instances or 2),
        container=container or "tgi",
        quantize=quantize,
    )
    if hosting_mode == "inference-component" and "room" not in found and max_instances == "1":
        # one instance has room only for two or more copies (a copy that does not fit at all
        # leaves none either)
        fit = copies_per_instance(instance_type or DEFAULT_INSTANCE, int(num_gpus or 4))
        if fit < UPDATE_ROOM:
            found.append("room")
    return found


def render_gateway_rules(indent: str = "  ") -> str:
    """The gateway template's Rules on the nested endpoint's parameters."""
    nested = '!Equals [!Ref DeployEndpoint, "true"]'
    component = "!Equals [!Ref EndpointHostingMode, inference-component]"
    lines = _gpu_rules(indent, "EndpointInstanceType", "EndpointNumGpus", True, nested)
    lines += _rule(
        indent,
        "NestedQuantizeIsForTgi",
        f'!And [{nested}, !Not [!Contains [["", tgi], !Ref EndpointContainer]]]',
        '!Equals [!Ref EndpointQuantize, ""]',
        "EndpointQuantize applies to EndpointContainer=tgi only.",
    )
    lines += _rule(
        indent,
        "NestedComponentHasNoMinimum",
        f"!And [{nested}, {component}]",
        '!Equals [!Ref EndpointMinInstanceCount, ""]',
        "With EndpointHostingMode=inference-component the endpoint's minimum is 0 instances "
        "(managed instance scaling): leave EndpointMinInstanceCount empty.",
    )
    for most in ["", *map(str, range(1, MAX_MIN_INSTANCES))]:
        allowed = _numbers(1, int(most or 2)).replace("[", '["", ', 1)
        lines += _rule(
            indent,
            f"NestedMinInstancesAtMost{most or 'Default'}",
            f'!And [{nested}, !Not [{component}], !Equals [!Ref EndpointMaxInstanceCount, "{most}"]]',
            f"!Contains [{allowed}, !Ref EndpointMinInstanceCount]",
            "EndpointMinInstanceCount must not exceed EndpointMaxInstanceCount (default 2).",
        )
    # One copy at most (MaxCopies' default): only a single instance holding one copy is short.
    roomy = [
        case
        for per_instance in range(UPDATE_ROOM, MAX_GPUS + 1)
        for case in _per_instance_cases(
            per_instance, "EndpointInstanceType", "EndpointNumGpus", True
        )
    ]
    lines += _rule(
        indent,
        "NestedRoomForAnUpdate",
        f'!And [{nested}, {component}, !Equals [!Ref EndpointMaxInstanceCount, "1"]]',
        _any(roomy),
        "One instance holding one copy leaves no room to update the model (the new copy starts "
        "before the old one stops): set EndpointMaxInstanceCount to 2 or more (a ceiling, not "
        "running instances).",
    )
    return "\n".join(lines)
