"""Small shared pieces of the JSON API: body parsing, query flags, and JSON rendering."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from handover.errors import APIError
from handover.timeutil import isoformat


class BadJSON(APIError):
    status = 400
    code = "bad_json"


class UnsupportedMediaType(APIError):
    status = 415
    code = "unsupported_media_type"


class JSONProvider(DefaultJSONProvider):
    """Timestamps as ISO 8601 UTC with Z, dates as ISO; key order as built."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return isoformat(o)
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def json_body() -> Any:
    """The request's JSON body, or a 400/415 naming what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadJSON(f"The body is not valid JSON: {_where(error)}.") from None


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = json_body()
    if not isinstance(body, dict):
        raise APIError(
            "The body must be a JSON object.", fields={"_schema": ["Expected an object."]}
        )
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _where(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"line {error.lineno} column {error.colno}: {error.msg}"
    return "not UTF-8 or not JSON"


def flag(name: str) -> bool | None:
    """A true/false query parameter, or None when absent."""
    value = request.args.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise APIError(f"{name} must be true or false.", fields={name: ["Must be true or false."]})


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    """A bounded whole-number query parameter."""
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise APIError(
            f"{name} must be {low} to {high}.", fields={name: [f"Must be {low} to {high}."]}
        )
    return int(value)
