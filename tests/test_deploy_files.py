"""deploy/: the IAM policy grants exactly what the code calls; the task definition agrees with the image and settings."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, TypeGuard

import botocore.session
import pytest
from botocore import xform_name

from bot.config import Settings
from bot.ecs.requests import register_params, register_task_definition_fields

ROOT = Path(__file__).resolve().parents[1]
FUNNEL = ("_call", "_svc_call")  # EcsGateway's methods that every ECS call goes through
POLICY = ROOT / "deploy" / "iam-policy.json"
TASK_DEFINITION = ROOT / "deploy" / "task-definition.json"
DOCKERFILE = ROOT / "Dockerfile"
# What the gateway's calls need besides their own action (docs/OPERATIONS.md, "IAM"), each with the reason.
IMPLIED = {
    # RegisterTaskDefinition copies the task definition's tags: tagging on create is authorised as ecs:TagResource.
    "ecs:TagResource": "ecs:RegisterTaskDefinition",
    # The copy keeps taskRoleArn/executionRoleArn, and UpdateService re-sends the hooks' roleArn: both pass roles.
    "iam:PassRole": "ecs:RegisterTaskDefinition",
}


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name → API operation name, from botocore's model of the service."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def python_files(package: str = "") -> list[Path]:
    return sorted((ROOT / "bot" / package).rglob("*.py"))


def gateway_operations() -> set[str]:
    """Every ECS operation named in a call of the gateway's funnel in bot/ecs (only bot/ecs may import boto3)."""
    names = set(operations("ecs").values())
    found: set[str] = set()
    for path in python_files("ecs"):
        tree = ast.parse(path.read_text(), str(path))
        inside = {
            id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in FUNNEL for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            if funnel_call(node) and id(node) not in inside:
                literals = [a.value for a in node.args if isinstance(a, ast.Constant) and a.value in names]
                assert len(literals) == 1, f"{path}:{node.lineno}: an ECS call must name its operation literally"
                found.add(str(literals[0]))
    return found


def funnel_call(node: ast.AST) -> TypeGuard[ast.Call]:
    """`self._call(...)` or `self._svc_call(...)`."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FUNNEL


def direct_calls(service: str) -> set[str]:
    """Operations of `service` called as boto3 client methods anywhere in bot/ (`client.describe_services(...)`)."""
    methods = operations(service)
    found: set[str] = set()
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
                found.add(methods[node.func.attr])
    return found


def scan() -> dict[str, list[str]]:
    """What the code calls, as found by reading its syntax trees."""
    return {
        "gateway": sorted(gateway_operations()),
        "ecs": sorted(direct_calls("ecs")),
        "sts": sorted(direct_calls("sts")),
    }


@cache
def scanned() -> dict[str, set[str]]:
    """`scan()` in a fresh interpreter: CPython 3.11.7's ast module can be left broken for the whole process by an
    earlier test's threads ("AST constructor recursion depth mismatch", python/cpython#106905), so this reads the
    code where nothing else has run."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.test_deploy_files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {key: set(values) for key, values in json.loads(out).items()}


def policy() -> dict[str, Any]:
    return dict(json.loads(POLICY.read_text()))


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def granted() -> set[str]:
    return {a for s in policy()["Statement"] if s["Effect"] == "Allow" for a in actions(s)}


def test_the_code_reaches_ecs_only_through_the_gateway_funnel() -> None:
    assert scanned()["ecs"] == set(), "call ECS through EcsGateway._call, so the policy test and the metrics see it"
    assert len(scanned()["gateway"]) >= 9


def test_the_policy_grants_exactly_what_the_code_calls() -> None:
    called = {f"ecs:{op}" for op in scanned()["gateway"]}
    called |= {f"sts:{op}" for op in scanned()["sts"]}
    implied = {action for action, needed_by in IMPLIED.items() if needed_by in called}
    assert "sts:AssumeRole" in called  # services with role_arn (bot/ecs/clients.py)
    assert granted() == called | implied
    assert not any(s["Effect"] == "Allow" and "*" in a for s in policy()["Statement"] for a in actions(s))


def test_the_implied_permissions_are_still_implied() -> None:
    fields = register_task_definition_fields()
    assert {"taskRoleArn", "executionRoleArn", "tags"} <= fields
    task_definition = {
        "family": "web",
        "taskRoleArn": "arn:aws:iam::111122223333:role/web-task",
        "executionRoleArn": "arn:aws:iam::111122223333:role/web-execution",
        "containerDefinitions": [{"name": "web", "image": "repo/web:1"}],
    }
    params = register_params(task_definition, [{"key": "team", "value": "shop"}], "web", ":2")
    assert params["taskRoleArn"] and params["executionRoleArn"] and params["tags"]


def test_tagging_and_passing_roles_are_scoped_by_condition() -> None:
    by_action = {a: s for s in policy()["Statement"] for a in actions(s)}
    assert by_action["ecs:TagResource"]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
    passed_to = by_action["iam:PassRole"]["Condition"]["StringEquals"]["iam:PassedToService"]
    assert sorted(passed_to) == ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]
    assert all(s.get("Sid") for s in policy()["Statement"])


# The task definition for DeployBot itself ----------------------------------------------------------------------


def container() -> dict[str, Any]:
    (only,) = json.loads(TASK_DEFINITION.read_text())["containerDefinitions"]
    return dict(only)


def dockerfile(instruction: str) -> str:
    """The last `instruction` line of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    final = text.split("\nFROM ")[-1]
    lines = [line for line in final.splitlines() if line.startswith(f"{instruction} ")]
    assert lines, instruction
    return lines[-1].removeprefix(f"{instruction} ").strip()


def settings_variables() -> set[str]:
    """Every environment variable Settings reads."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        names |= {str(c).upper() for c in choices} if choices else {name.upper()}
    return names


def test_the_task_definition_runs_the_images_command_as_its_user() -> None:
    c = container()
    assert "entryPoint" not in c  # the image's ENTRYPOINT ["deploybot"] stays
    assert json.loads(dockerfile("ENTRYPOINT")) == ["deploybot"]
    assert c["command"] == json.loads(dockerfile("CMD"))
    assert c["user"] == dockerfile("USER") != "0"
    port = {e["name"]: e["value"] for e in c["environment"]}["PORT"]
    assert [m["containerPort"] for m in c["portMappings"]] == [int(port)] == [int(dockerfile("EXPOSE"))]
    health = dockerfile("HEALTHCHECK")
    assert c["healthCheck"]["command"][1:] == json.loads(health[health.index("CMD [") + 4 :])
    assert c["linuxParameters"]["initProcessEnabled"] is True  # signals reach the bot; zombies are reaped


@pytest.mark.parametrize("kind", ["environment", "secrets"])
def test_every_variable_of_the_task_definition_is_one_the_bot_reads(kind: str) -> None:
    names = {e["name"] for e in container()[kind]}
    assert names <= settings_variables() | {"AWS_REGION"}


def test_secrets_come_from_secrets_manager_never_from_plain_environment() -> None:
    c = container()
    secret_fields = {
        name.upper() for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
    }
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"} <= {e["name"] for e in c["secrets"]}
    assert not secret_fields & {e["name"] for e in c["environment"]}
    assert all(e["valueFrom"].startswith("arn:aws:secretsmanager:") for e in c["secrets"])


if __name__ == "__main__":
    print(json.dumps(scan()))
