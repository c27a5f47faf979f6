"""ECS error codes as an exception the protocol layer turns into an AWS JSON error body."""

from __future__ import annotations

# Codes AWS answers with HTTP 500; everything else is a client error (400).
SERVER_CODES = frozenset({"ServerException"})


class EcsError(Exception):
    """An ECS API error carrying AWS's error code and a message naming the offending field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """HTTP status AWS uses for this code."""
        return 500 if self.code in SERVER_CODES else 400


def invalid(message: str) -> EcsError:
    """Shorthand for the most common refusal."""
    return EcsError("InvalidParameterException", message)
