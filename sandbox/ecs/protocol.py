"""AWS JSON 1.1 wire protocol for the ECS API, validated against botocore's ECS service model.

Requests are `POST /` with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`; bodies are
validated with botocore's ParamValidator plus an enum check (ParamValidator does not check enums, ECS does).
Errors are `{"__type": code, "message": ...}` with HTTP 400 (500 for ServerException).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from .errors import EcsError

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"

OPERATIONS = frozenset(
    {
        "CreateCluster",
        "DescribeClusters",
        "RegisterTaskDefinition",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "CreateService",
        "DescribeServices",
        "UpdateService",
        "ListServices",
        "ListServiceDeployments",
        "DescribeServiceDeployments",
        "DescribeServiceRevisions",
        "ContinueServiceDeployment",
        "StopServiceDeployment",
    }
)


@lru_cache(maxsize=1)
def service_model() -> Any:
    """The botocore ECS service model (loaded once)."""
    return botocore.session.get_session().get_service_model("ecs")


def operation_from_target(target: str | None) -> str:
    """Extract the operation name from the X-Amz-Target header."""
    if not target or not target.startswith(TARGET_PREFIX):
        raise EcsError("ClientException", "Missing or invalid X-Amz-Target header")
    operation = target[len(TARGET_PREFIX) :]
    if operation not in OPERATIONS:
        raise EcsError("ClientException", f"Operation {operation} is not supported by the sandbox")
    return operation


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON 1.1 request body (an empty body means no parameters)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise EcsError("SerializationException", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EcsError("SerializationException", "Request body must be a JSON object")
    return body


def validate_input(operation: str, params: dict[str, Any]) -> None:
    """Validate params against the operation's input shape; raise InvalidParameterException naming the field."""
    shape = service_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise EcsError("InvalidParameterException", report.generate_report())
    _check_enums(params, shape, "")


def _check_enums(value: Any, shape: Any, path: str) -> None:
    # ParamValidator has already checked types, so the walk can trust them.
    kind = shape.type_name
    if kind == "structure" and not shape.metadata.get("document"):
        for name, member in shape.members.items():
            if name in value:
                _check_enums(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "list":
        for i, item in enumerate(value):
            _check_enums(item, shape.member, f"{path}[{i}]")
    elif kind == "string" and shape.enum and value not in shape.enum:
        allowed = ", ".join(shape.enum)
        raise EcsError("InvalidParameterException", f"Invalid value for {path}: {value!r}; valid: {allowed}")


def encode_response(body: dict[str, Any]) -> bytes:
    """Serialize a response; timestamps are already epoch-second floats, as JSON 1.1 wants."""
    return json.dumps(body, separators=(",", ":")).encode()


def encode_error(error: EcsError) -> bytes:
    """Serialize an error in AWS's JSON 1.1 error format."""
    return json.dumps({"__type": error.code, "message": error.message}).encode()
