"""The OpenAPI document of /api/v1, built from the marshmallow schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from handover.records import schemas

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

ERRORS = {
    "400": "Malformed request (bad JSON, bad header).",
    "401": "No or invalid bearer token.",
    "403": "Visible, but you may not do this.",
    "404": "Unknown, or not visible to you.",
    "409": "Not allowed in the handover's current status.",
    "413": "Body too large.",
    "415": "Body is not application/json.",
    "422": "Validation failed: `error.fields` maps each field path to its messages.",
}
ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
PURPOSE = {
    "name": "X-Access-Purpose",
    "in": "header",
    "required": False,
    "description": "Why you are reading (required for police officers; audited).",
    "schema": {"type": "string", "maxLength": 200},
}


def _json(schema: str | dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: str, schema: str | dict[str, Any], *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {ok: {"description": "Success", **_json(schema)}}
    for code in codes:
        out[code] = {"description": ERRORS[code], **_json("Error")}
    return out


def _paths() -> dict[str, dict[str, Any]]:
    std = ("401", "404")
    return {
        "/handovers": {
            "post": {
                "summary": "Create a draft handover (any well-formed subset of the record).",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 200},
                    }
                ],
                "requestBody": {"required": True, **_json("HandoverRecord")},
                "responses": _responses(
                    "201", "HandoverCreated", "400", "401", "403", "413", "415", "422"
                ),
            },
            "get": {
                "summary": "List visible handovers (metadata only).",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "team", "in": "query", "schema": {"type": "string"}},
                    {"name": "local_authority", "in": "query", "schema": {"type": "string"}},
                    {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": _responses(
                    "200",
                    {
                        "type": "object",
                        "properties": {
                            "handovers": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/HandoverMetadata"},
                            }
                        },
                    },
                    "400",
                    "401",
                ),
            },
        },
        "/handovers/{id}": {
            "parameters": [ID_PARAM],
            "get": {
                "summary": "The record for your audience, with status, versions and events.",
                "parameters": [PURPOSE],
                "responses": _responses("200", "HandoverDetail", "400", *std),
            },
            "patch": {
                "summary": "Update a draft: each section given replaces that section.",
                "requestBody": {"required": True, **_json("HandoverRecord")},
                "responses": _responses(
                    "200", "HandoverCreated", "400", "403", "409", "415", "422", *std
                ),
            },
        },
        "/handovers/{id}/submit": {
            "parameters": [ID_PARAM],
            "post": {
                "summary": "Enforce the standard, lock the record and schedule its transfer.",
                "responses": _responses("200", "HandoverSubmitted", "403", "409", "422", *std),
            },
        },
        "/handovers/{id}/addenda": {
            "parameters": [ID_PARAM],
            "post": {
                "summary": "Add later information as a new version with a note.",
                "requestBody": {"required": True, **_json("AddendumCreate")},
                "responses": _responses(
                    "201", "AddendumCreated", "400", "403", "409", "415", "422", *std
                ),
            },
        },
        "/handovers/{id}/events": {
            "parameters": [ID_PARAM],
            "get": {
                "summary": "The record's history.",
                "parameters": [PURPOSE],
                "responses": _responses("200", {"type": "object"}, "400", *std),
            },
        },
        "/handovers/{id}/export": {
            "parameters": [ID_PARAM],
            "get": {
                "summary": "The record through an in-hours system mapping (config/exports).",
                "parameters": [
                    {
                        "name": "system",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["json", "csv"]},
                    },
                ],
                "responses": {
                    **_responses("200", {"type": "object"}, "400", "403", *std),
                    "200": {
                        "description": "Success",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }


@cache
def build_spec() -> dict[str, Any]:
    """Build the OpenAPI 3 document once per process."""
    spec = APISpec(
        title="handover",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "EDT to daytime team child protection handovers."},
        servers=[{"url": "/api/v1"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in (
        "HandoverRecord",
        "HandoverCreated",
        "HandoverMetadata",
        "HandoverDetail",
        "HandoverSubmitted",
        "AddendumCreate",
        "AddendumCreated",
        "Error",
    ):
        spec.components.schema(name, schema=getattr(schemas, f"{name}Schema"))
    for path, operations in _paths().items():
        parameters = operations.pop("parameters", None)
        spec.path(path=path, operations=operations, parameters=parameters)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Serve the OpenAPI document (no sign-in needed: it holds no data)."""
    return jsonify(build_spec())
