"""A quick yes to "is this record well formed?", compiled from the marshmallow schemas themselves.

Checking the reference record through marshmallow costs more than storing it: about 500 fields,
each through several layers of calls. ``compile_check`` walks a schema's fields once and builds a
plain function that answers only *yes* or *not sure*. Where it answers *not sure*, marshmallow
runs as before and gives its messages; so it must never say *yes* to what marshmallow refuses.

It therefore follows marshmallow's own rules (``Field.deserialize``: required, ``allow_none``,
then the value, then every validator) and is stricter where that is simpler (a list must be a
``list``). Field classes it does not know are asked through their own ``deserialize``; schemas
with hooks, ``partial`` or ``many`` are not compiled at all. ``tests/records/test_schema_check.py``
holds it to marshmallow's verdict over thousands of altered records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, utils, validate

from handover.records.schemas import StrictBoolean

Check = Callable[[Any], bool]


def compile_check(schema: Schema) -> Check | None:
    """A function saying whether data passes ``schema.validate``; None if it cannot be made."""
    if schema.many or schema.partial or schema.unknown != RAISE or _has_hooks(schema):
        return None
    checks: dict[str, Check] = {}
    required: list[str] = []
    for name, field in schema.load_fields.items():
        check = _field_check(field)
        if check is None:
            return None
        key = field.data_key or name
        checks[key] = check
        if field.required:
            required.append(key)
    known = frozenset(checks)

    def check_schema(data: Any) -> bool:
        # type() first: JSON gives dicts, and an ABC's isinstance costs more than the check.
        if (type(data) is not dict and not isinstance(data, Mapping)) or not known.issuperset(data):
            return False
        for key in required:
            if key not in data:
                return False
        for key, value in data.items():  # loops, not all(): this runs ~500 times a record
            if not checks[key](value):
                return False
        return True

    return check_schema


def _has_hooks(schema: Schema) -> bool:
    hooks: Mapping[Any, Any] = getattr(schema, "_hooks", {})
    return any(hooks.values())


def _field_check(field: fields.Field[Any]) -> Check | None:
    """A check of one field's present value: null rule, then the value, then its validators."""
    if field.pre_load or field.post_load:
        return _by_marshmallow(field)
    if type(field) in (fields.Date, fields.AwareDateTime):
        return _temporal_check(cast(fields.Date | fields.AwareDateTime, field))
    text_check = _text_check(field)
    if text_check is not None:
        return text_check
    value_check = _value_check(field)
    if value_check is None:
        return _by_marshmallow(field)
    validators = [_validator_check(v) for v in field.validators]
    if len(validators) > 1:
        checks = [value_check, *validators]
        value_check = lambda value: all(check(value) for check in checks)  # noqa: E731
    elif validators:
        first, second = value_check, validators[0]
        value_check = lambda value: first(value) and second(value)  # noqa: E731
    allow_none, check_value = field.allow_none, value_check

    def check_field(value: Any) -> bool:
        return allow_none if value is None else check_value(value)

    return check_field


def _value_check(field: fields.Field[Any]) -> Check | None:
    """Whether a non-null value deserialises, for the field classes known here; else None."""
    kind = type(field)
    if kind is fields.String:
        return lambda value: isinstance(value, str)
    if kind is StrictBoolean:
        return lambda value: isinstance(value, bool)
    # isinstance narrows the type; `kind is` keeps subclasses (which may behave otherwise) out.
    if (
        isinstance(field, fields.Nested)
        and kind is fields.Nested
        and field.unknown in (None, RAISE)
    ):
        return compile_check(field.schema) if isinstance(field.schema, Schema) else None
    if isinstance(field, fields.List) and kind is fields.List:
        inner = _field_check(field.inner)
        if inner is None:
            return None
        check_item = inner

        def check_list(value: Any) -> bool:
            if type(value) is not list:
                return False
            for item in value:
                if not check_item(item):
                    return False
            return True

        return check_list
    return None


def _text_check(field: fields.Field[Any]) -> Check | None:
    """Most fields of a record, in one function each: text, maybe of a length, choice or pattern."""
    if type(field) is not fields.String or len(field.validators) > 1:
        return None
    allow_none = field.allow_none
    validator = field.validators[0] if field.validators else None
    if validator is None:
        return lambda value: allow_none if value is None else isinstance(value, str)
    if type(validator) is validate.Length and validator.equal is None:
        low = validator.min or 0
        high = validator.max if validator.max is not None else float("inf")
        return lambda value: (
            allow_none if value is None else isinstance(value, str) and low <= len(value) <= high
        )
    if type(validator) is validate.OneOf and isinstance(validator.choices, tuple | list):
        choices = frozenset(validator.choices)
        return lambda value: (
            allow_none if value is None else isinstance(value, str) and value in choices
        )
    if type(validator) is validate.Regexp and isinstance(validator.regex.pattern, str):
        match = validator.regex.match
        return lambda value: (
            allow_none if value is None else isinstance(value, str) and match(value) is not None
        )
    return None


def _temporal_check(field: fields.Date | fields.AwareDateTime) -> Check:
    """A date or an aware date-time in ISO format, parsed by marshmallow's own function.

    Unlike other fields, their validators see the parsed value, not the text.
    """
    parse = type(field).DESERIALIZATION_FUNCS.get(field.format or "")
    if parse is None or (isinstance(field, fields.AwareDateTime) and field.default_timezone):
        return _by_marshmallow(field)
    aware = isinstance(field, fields.AwareDateTime)
    validators = [_validator_check(v) for v in field.validators]
    allow_none = field.allow_none

    def check_temporal(value: Any) -> bool:
        if value is None:
            return allow_none
        if not isinstance(value, str):  # a date object cannot come from JSON: not sure
            return False
        try:
            parsed = parse(value)
        except ValueError:
            return False
        if aware and not (isinstance(parsed, datetime) and utils.is_aware(parsed)):
            return False
        for check in validators:
            if not check(parsed):
                return False
        return True

    return check_temporal


def _validator_check(validator: Callable[[Any], Any]) -> Check:
    """One validator as marshmallow applies it: refused if it raises or returns False."""
    if type(validator) is validate.Length and validator.equal is None:
        low, high = validator.min, validator.max
        return lambda value: (
            (low is None or len(value) >= low) and (high is None or len(value) <= high)
        )
    if type(validator) is validate.OneOf and isinstance(validator.choices, tuple | list):
        choices = frozenset(validator.choices)
        return lambda value: isinstance(value, str) and value in choices

    def check_validator(value: Any) -> bool:
        try:
            return validator(value) is not False
        except ValidationError:
            return False

    return check_validator


def _by_marshmallow(field: fields.Field[Any]) -> Check:
    """The field's own ``deserialize``: exact for any class, at marshmallow's speed."""

    def check_field(value: Any) -> bool:
        try:
            field.deserialize(value)
        except ValidationError:
            return False
        return True

    return check_field
