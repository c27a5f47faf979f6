"""A local Amazon ECS that speaks the real wire protocol and behaves like ECS advanced deployments.

Start it with `start()` (tests) or `serve_forever()` (the `deploybot sandbox ecs` CLI); point boto3 at it with
`endpoint_url=handle.url` or `AWS_ENDPOINT_URL_ECS`. Behaviour follows /work/shared/ECS_BEHAVIOUR.md;
stage durations are listed in `plan.py`, the control API in `control.py`, the seeded world in `seed.py`.
"""

from __future__ import annotations

from .server import SandboxHandle, serve_forever, start

__all__ = ["SandboxHandle", "serve_forever", "start"]
