"""Small shared pieces of the JSON API: body parsing, query flags, and JSON rendering."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import orjson
from flask import request
from flask.json.provider import DefaultJSONProvider

from handover.errors import APIError, ValidationFailed
from handover.timeutil import isoformat

NUL = "\x00"
NUL_MESSAGE = "Must not contain the NUL character."


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
    """The request's JSON body, or a 400/415/422 naming what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = request.get_data(cache=True)
    # orjson: a third of the standard parser's time on a full record. It refuses NaN and
    # Infinity, lone surrogates and nesting past 1,024 levels, and reads an integer beyond 64
    # bits as a float; no body field takes a number but template_version, which refuses floats.
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if error.msg == "depth limit exceeded":
            raise BadJSON("The body is not valid JSON: nested too deeply.") from None
        raise BadJSON(f"The body is not valid JSON: {_where(error)}.") from None
    # A NUL reaches a string only as the escape \u0000, or in a body that is not UTF-8 (whose
    # bytes hold zeros): without either, walking every key and string of a large record is
    # skipped (bench create: it cost as much as sealing the record's sections).
    where = _nul_in(body) if b"\\u0000" in raw or b"\x00" in raw else None
    if where is not None:
        raise ValidationFailed(
            "Text may not contain NUL characters.", fields={where: [NUL_MESSAGE]}
        )
    return body


def _nul_in(body: Any) -> str | None:
    """The path of the first key or string in ``body`` holding a NUL character, if any."""
    # PostgreSQL cannot store NUL in text, and no field here has a use for one. Iterative: the
    # body may be nested as deeply as the JSON parser allows.
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str) and NUL in value:
            return path or "_schema"
        for key, item in _members(value):
            name = f"{path}.{key}" if path else str(key)
            if NUL in name:
                return name.replace(NUL, "\\0")
            pending.append((name, item))
    return None


def _members(value: Any) -> Iterable[tuple[Any, Any]]:
    """An object's keys and values, an array's indexes and items; nothing for a scalar."""
    if isinstance(value, dict):
        return value.items()
    return enumerate(value) if isinstance(value, list) else ()


def refuse_nul() -> None:
    """A 400 for a NUL character in the path, a query parameter or a header, naming which."""
    suspects = [("path", request.path)]
    suspects += [(name, f"{name}{value}") for name, value in request.args.items(multi=True)]
    suspects += list(request.headers.items())
    for name, value in suspects:
        if NUL in value:
            raise APIError(
                "The request may not contain NUL characters.",
                fields={name.replace(NUL, "\\0"): [NUL_MESSAGE]},
            )


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = json_body()
    if not isinstance(body, dict):
        raise APIError(
            "The body must be a JSON object.", fields={"_schema": ["Expected an object."]}
        )
    return body


def _where(error: json.JSONDecodeError) -> str:
    return f"line {error.lineno} column {error.colno}: {error.msg}"


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
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise APIError(
            f"{name} must be {low} to {high}.", fields={name: [f"Must be {low} to {high}."]}
        )
    return int(value)
