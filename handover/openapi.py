"""The OpenAPI document of /api/v1, built from the marshmallow schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from handover import audit_api
from handover.delivery import schemas as delivery_schemas
from handover.directory import schemas as directory_schemas
from handover.directory.models import ROLES
from handover.records import schemas
from handover.records.models import STATUSES

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

ERRORS = {
    "400": "Malformed request (bad JSON, a bad header or parameter, a NUL character anywhere).",
    "401": "No or invalid bearer token.",
    "403": "Visible, but you may not do this.",
    "404": "Unknown, or not visible to you.",
    "409": "Not allowed in the handover's current status.",
    "413": "Body too large.",
    "415": "Body is not application/json.",
    "422": "Validation failed: `error.fields` maps each field path to its messages.",
    "500": "`record_unreadable`: the record cannot be decrypted; support has been alerted.",
}
ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry return the first result; reused for another request: 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
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
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, **_json("HandoverRecord")},
                "responses": _responses(
                    "201", "HandoverCreated", "400", "401", "403", "413", "415", "422"
                ),
            },
            "get": {
                "summary": "List visible handovers (metadata only).",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                    {"name": "team", "in": "query", "schema": {"type": "string"}},
                    {"name": "local_authority", "in": "query", "schema": {"type": "string"}},
                    {"name": "overdue", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                    },
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
        "/handovers/{id}/linked": {
            "parameters": [ID_PARAM],
            "get": {
                "summary": "Linked handovers you may know of, each with the reasons it is linked.",
                "description": "Records in another LA (or another EDT team's) come as metadata "
                "only; records you may not see at all are left out; police see only records "
                "they may read. Police must send X-Access-Purpose.",
                "parameters": [PURPOSE],
                "responses": _responses("200", "LinkedHandovers", "400", *std),
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


DIRECTORY_SCHEMAS = (
    "LocalAuthorityCreate",
    "LocalAuthorityUpdate",
    "LocalAuthority",
    "TeamCreate",
    "TeamUpdate",
    "Team",
    "ClosureDayCreate",
    "UserCreate",
    "UserUpdate",
    "User",
    "Token",
)
CODE_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The local authority's or team's code.",
    "schema": {"type": "string"},
}
BODY_ERRORS = ("400", "415", "422")


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _op(
    summary: str, ok: str, schema: str | dict[str, Any], *codes: str, **extra: Any
) -> dict[str, Any]:
    """An admin or audit operation: 401 without a token, 403 for the wrong role."""
    responses = _responses(ok, schema, "401", "403", *codes)
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if "409" in codes:
        operation["responses"]["409"]["description"] = "The code, email or day is already taken."
    if "body" in extra:
        operation["requestBody"] = {"required": True, **_json(extra.pop("body"))}
    return {**operation, **extra}


def _list_of(key: str, name: str) -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}
    return {"type": "object", "properties": {key: items}}


def _admin_paths() -> dict[str, dict[str, Any]]:
    authorities, teams, users = "local_authorities", "teams", "users"
    change = (*BODY_ERRORS, "404")
    filters = [
        _query("team", {"type": "string"}),
        _query("role", {"enum": list(ROLES)}),
        _query("active", {"type": "boolean"}),
    ]
    return {
        "/admin/local-authorities": {
            "get": _op("List local authorities.", "200", _list_of(authorities, "LocalAuthority")),
            "post": _op(
                "Add a local authority.",
                "201",
                "LocalAuthority",
                *BODY_ERRORS,
                "409",
                body="LocalAuthorityCreate",
            ),
        },
        "/admin/local-authorities/{id}": {
            "parameters": [CODE_PARAM],
            "get": _op("One local authority.", "200", "LocalAuthority", "404"),
            "patch": _op(
                "Change its name or intake team.",
                "200",
                "LocalAuthority",
                *change,
                body="LocalAuthorityUpdate",
            ),
        },
        "/admin/teams": {
            "get": _op("List teams with hours and closure days.", "200", _list_of(teams, "Team")),
            "post": _op("Add a team.", "201", "Team", *BODY_ERRORS, "409", body="TeamCreate"),
        },
        "/admin/teams/{id}": {
            "parameters": [CODE_PARAM],
            "get": _op("One team.", "200", "Team", "404"),
            "patch": _op("Change a team or its hours.", "200", "Team", *change, body="TeamUpdate"),
        },
        "/admin/teams/{id}/closure-days": {
            "parameters": [CODE_PARAM],
            "post": _op(
                "Close the team on a day.", "201", "Team", *change, "409", body="ClosureDayCreate"
            ),
            "delete": _op(
                "Reopen a closure day.",
                "200",
                "Team",
                "400",
                "404",
                parameters=[_query("day", {"type": "string", "format": "date"}, True)],
            ),
        },
        "/admin/users": {
            "get": _op("List users.", "200", _list_of(users, "User"), "400", parameters=filters),
            "post": _op("Add a user.", "201", "User", *BODY_ERRORS, "409", body="UserCreate"),
        },
        "/admin/users/{id}": {
            "parameters": [ID_PARAM],
            "get": _op("One user.", "200", "User", "404"),
            "patch": _op("Change a user.", "200", "User", *change, "409", body="UserUpdate"),
        },
        "/admin/users/{id}/deactivate": {
            "parameters": [ID_PARAM],
            "post": _op("Deactivate: tokens revoked, sessions ended.", "200", "User", "404", "422"),
        },
        "/admin/users/{id}/tokens": {
            "parameters": [ID_PARAM],
            "get": _op("A user's API tokens.", "200", _list_of("tokens", "Token"), "404"),
        },
        "/admin/tokens/{id}/revoke": {
            "parameters": [ID_PARAM],
            "post": _op("Revoke an API token at once.", "200", "Token", "404"),
        },
    }


def _audit_paths() -> dict[str, dict[str, Any]]:
    text, when = {"type": "string"}, {"type": "string", "format": "date-time"}
    search = [
        _query("actor_id", {**text, "minLength": 1, "maxLength": 36}),
        _query("object_id", {**text, "minLength": 1, "maxLength": 64}),
        _query("action", {**text, "minLength": 1, "maxLength": 60}),
        _query("from", when),
        _query("to", when),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12}),
    ]
    return {
        "/audit/events": {
            "get": _op(
                "Search the audit log, in chain order (auditors).",
                "200",
                "AuditEventPage",
                "400",
                parameters=search,
            )
        },
        "/audit/verify": {
            "get": _op("Verify the audit chain and checkpoints (auditors).", "200", "AuditVerify")
        },
    }


DELIVERY_SCHEMAS = (
    "Acknowledge",
    "MessageCreate",
    "Return",
    "Reroute",
    "Withdraw",
    "Close",
    "Inbox",
    "Thread",
)
TRANSITION_ERRORS = ("400", "401", "403", "404", "409", "415", "422")


def _transition(summary: str, body: str) -> dict[str, Any]:
    return {
        "parameters": [ID_PARAM],
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **_json(body)},
            "responses": _responses("200", "HandoverMetadata", *TRANSITION_ERRORS),
        },
    }


def _delivery_paths() -> dict[str, dict[str, Any]]:
    created = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["query", "reply", "note"]},
            "open_queries": {"type": "integer"},
        },
    }
    return {
        "/teams/{id}/inbox": {
            "parameters": [CODE_PARAM],
            "get": _op(
                "The team's delivered, acknowledged and returned handovers; overdue first.",
                "200",
                "Inbox",
                "400",
                "404",
                parameters=[_query("limit", {"type": "integer", "minimum": 1, "maximum": 500})],
            ),
        },
        "/handovers/{id}/acknowledge": _transition(
            "Acknowledge with a read-back: a synthesis and a response to every action.",
            "Acknowledge",
        ),
        "/handovers/{id}/messages": {
            "parameters": [ID_PARAM],
            "get": _op("The query thread (EDT and day teams).", "200", "Thread", "404"),
            "post": {
                "summary": "Write to the thread; a day-team message answering none opens a query.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, **_json("MessageCreate")},
                "responses": _responses("201", created, *TRANSITION_ERRORS),
            },
        },
        "/handovers/{id}/return": _transition(
            "Return to EDT: not this team's, with a reason.", "Return"
        ),
        "/handovers/{id}/reroute": _transition(
            "Send a returned handover to another team (fresh escalation clock).", "Reroute"
        ),
        "/handovers/{id}/withdraw": _transition(
            "Withdraw before acknowledgement (EDT managers).", "Withdraw"
        ),
        "/handovers/{id}/close": _transition(
            "Close an acknowledged handover with its in-hours reference.", "Close"
        ),
    }


def _every_answer(path: str, operation: dict[str, Any]) -> None:
    """Add what any request may get: 400 (NUL, bad header), 413/415 with a body, 500 on decrypt."""
    codes = ["400", *(("413", "415") if "requestBody" in operation else ())]
    codes += ["500"] if path.startswith("/handovers/{id}") else []
    for code in codes:
        operation["responses"].setdefault(code, {"description": ERRORS[code], **_json("Error")})


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
        "LinkedHandovers",
        "Error",
    ):
        spec.components.schema(name, schema=getattr(schemas, f"{name}Schema"))
    for name in DIRECTORY_SCHEMAS:
        spec.components.schema(name, schema=getattr(directory_schemas, f"{name}Schema"))
    for name in ("AuditEvent", "AuditEventPage", "AuditVerify"):
        spec.components.schema(name, schema=getattr(audit_api, f"{name}Schema"))
    for name in DELIVERY_SCHEMAS:
        spec.components.schema(name, schema=getattr(delivery_schemas, f"{name}Schema"))
    paths = {**_paths(), **_admin_paths(), **_audit_paths(), **_delivery_paths()}
    for path, operations in paths.items():
        parameters = operations.pop("parameters", None)
        for operation in operations.values():
            _every_answer(path, operation)
        spec.path(path=path, operations=operations, parameters=parameters)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Serve the OpenAPI document (no sign-in needed: it holds no data)."""
    return jsonify(build_spec())
