"""The API's one error envelope and the exceptions that produce it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class APIError(Exception):
    """An error the client can act on: rendered as ``{"error": {code, message, fields}}``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class ValidationFailed(APIError):
    status = 422
    code = "validation_failed"


class InvalidTransition(APIError):
    status = 409
    code = "invalid_transition"


class Conflict(APIError):
    status = 409
    code = "conflict"


class NotFound(APIError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested error dict into ``{"children.2.date_of_birth": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for sub_path, sub_messages in flatten_messages(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    elif isinstance(messages, list | tuple):
        for item in messages:
            for sub_path, sub_messages in flatten_messages(item, prefix).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def envelope(
    status: int, code: str, message: str, fields: Mapping[str, list[str]] | None = None
) -> Response:
    """Build the JSON error response every API failure uses."""
    body = {"error": {"code": code, "message": message, "fields": dict(fields or {})}}
    response = jsonify(body)
    response.status_code = status
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    """Render APIError and HTTP errors under /api as the JSON envelope."""
    from handover.crypto import CryptoError
    from handover.http import refuse_nul

    @app.before_request
    def screen_api_request() -> None:
        # Before any view reads a parameter: PostgreSQL refuses NUL in text with a 500.
        if _wants_json():
            refuse_nul()

    @app.errorhandler(CryptoError)
    def handle_crypto_error(error: CryptoError) -> Response:
        # The message names ids and key ids only; never content or key material.
        app.logger.error("record unreadable: %s", error)
        return envelope(
            500, "record_unreadable", "This record cannot be decrypted; support has been alerted."
        )

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> Response:
        return envelope(error.status, error.code, error.message, error.fields)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response | HTTPException:
        if not _wants_json():
            return error
        code = (error.name or "error").lower().replace(" ", "_")
        return envelope(error.code or 500, code, error.description or error.name)

    app.after_request(_allow_header)


def _allow_header(response: Response) -> Response:
    """Name the methods a path takes on a 405 (RFC 9110), whichever handler rendered the page."""
    refused = request.routing_exception
    if (
        response.status_code == 405
        and isinstance(refused, MethodNotAllowed)
        and refused.valid_methods
        and "Allow" not in response.headers
    ):
        response.headers["Allow"] = ", ".join(sorted(refused.valid_methods))
    return response
