"""The shape of a draft for the editor: where each page's dict lives, and where each task stands.

``page_data`` gives the dict a page reads (a section, or one item of a list section) and
``patch_for`` the PATCH body (merge by section, handover.records.service.update) that stores it,
with refs given to new children, people and actions and lists kept in order. ``task_statuses``
reads the same submit-standard failures that give the draft its completeness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handover.records.editor_pages import (
    BASICS,
    ITEM_NAMES,
    LIST_SECTIONS,
    NEEDS_CHILDREN,
    ORDER,
    REF_PREFIXES,
    ROUTING,
    SCALAR_SECTIONS,
)
from handover.records.forms import Choices

# Where a page's dict lives in the record, and the PATCH that puts it back (merge by section).


def items_of(record: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    """A list section's items (each a dict)."""
    value = record.get(section)
    return [dict(i) for i in value if isinstance(i, Mapping)] if isinstance(value, list) else []


def child_choices(record: Mapping[str, Any]) -> Choices:
    """(ref, name) of each child with a ref, for questions about the children."""
    return tuple(
        (child["ref"], item_title("children", child, i))
        for i, child in enumerate(items_of(record, "children"))
        if isinstance(child.get("ref"), str)
    )


def item_index(record: Mapping[str, Any], section: str, item: str) -> int | None:
    """The position ``item`` names (None: a new item); LookupError if it names none."""
    items = items_of(record, section)
    if section == "safety_plans":  # one plan per child: the URL names the child
        if item not in dict(child_choices(record)):
            raise LookupError(item)
        return next((i for i, plan in enumerate(items) if plan.get("child") == item), None)
    if item == "new":
        return None
    if item.isascii() and item.isdigit() and int(item) < len(items):
        return int(item)
    raise LookupError(item)


def page_data(
    section: str, record: Mapping[str, Any], index: int | None = None, item: str = ""
) -> dict[str, Any]:
    """The dict a page's questions read: a section, or one item of a list section."""
    if section == BASICS:
        return {key: record[key] for key in ROUTING if record.get(key) is not None}
    if section in SCALAR_SECTIONS:
        return {section: record[section]} if record.get(section) is not None else {}
    if section in LIST_SECTIONS:
        if index is not None:
            return items_of(record, section)[index]
        return {"child": item} if section == "safety_plans" else {}
    value = record.get(section)
    return dict(value) if isinstance(value, Mapping) else {}


def new_ref(section: str, record: Mapping[str, Any]) -> str:
    """The next free ref for a new child (c1, c2, ...), person (p…) or action (a…)."""
    taken = {item.get("ref") for name in REF_PREFIXES for item in items_of(record, name)}
    prefix, number = REF_PREFIXES[section], len(items_of(record, section)) + 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def _ordered(section: str, record: Mapping[str, Any], items: list[dict[str, Any]]) -> list[Any]:
    """Timelines run oldest first; safety plans follow the children's order."""
    if section == "timeline":
        return sorted(items, key=lambda entry: (entry.get("at") is None, entry.get("at") or ""))
    if section == "safety_plans":
        order = {ref: i for i, (ref, _) in enumerate(child_choices(record))}
        return sorted(items, key=lambda plan: order.get(plan.get("child"), len(order)))
    return items


def patch_for(
    section: str, record: Mapping[str, Any], index: int | None, data: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The PATCH body that stores the page's dict, and the path prefix of its errors."""
    if section == BASICS:
        return {key: data.get(key) for key in ROUTING}, ""
    if section in SCALAR_SECTIONS:
        return {section: data.get(section)}, ""
    if section not in LIST_SECTIONS:
        return {section: data or None}, f"{section}."
    items = items_of(record, section)
    if index is None:
        if section in REF_PREFIXES and not data.get("ref"):
            data = {"ref": new_ref(section, record), **data}
        items.append(data)
    else:
        items[index] = data
    items = _ordered(section, record, items)
    position = next(i for i, entry in enumerate(items) if entry is data)
    return {section: items}, f"{section}.{position}."


def patch_without(section: str, record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The PATCH that removes an item; a child's relationships and safety plan go with them."""
    items = items_of(record, section)
    removed = items.pop(index)
    patch: dict[str, Any] = {section: items or None}
    ref = removed.get("ref")
    if section == "children" and ref:
        people = items_of(record, "household")
        for person in people:
            links = person.get("relationships")
            if isinstance(links, list):
                person["relationships"] = [r for r in links if r.get("to") != ref] or None
            held = person.get("parental_responsibility_for")
            if isinstance(held, list):
                person["parental_responsibility_for"] = [r for r in held if r != ref]
        plans = [p for p in items_of(record, "safety_plans") if p.get("child") != ref]
        patch.update(household=_pruned(people), safety_plans=plans or None)
    return patch


def _pruned(people: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    cleaned = [{k: v for k, v in person.items() if v is not None} for person in people]
    return cleaned or None


def item_title(section: str, item: Mapping[str, Any], index: int) -> str:
    """How a list shows one item: a name, or what it is and its number."""
    if section in ("children", "household"):
        name = " ".join(str(item.get(k) or "").strip() for k in ("first_name", "last_name"))
        return name.strip() or f"{ITEM_NAMES[section].capitalize()} {index + 1}"
    key = {"professionals": "name", "timeline": "event", "actions": "what"}.get(section, "")
    text = str(item.get(key) or "").strip()
    if len(text) > 80:
        text = text[:79].rstrip() + "…"
    return text or f"{ITEM_NAMES[section].capitalize()} {index + 1}"


# The task list: where each section stands against the submit standard.

COMPLETED, INCOMPLETE, NOT_STARTED, CANNOT_START = (
    "completed",
    "incomplete",
    "not_started",
    "cannot_start",
)


def section_of(path: str) -> str:
    """The section an error path belongs to (routing fields are the basics)."""
    head = path.split(".", 1)[0]
    return BASICS if head in ROUTING else head


def _given(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_given(v) for v in value.values())
    if isinstance(value, list | str):
        return bool(value) if isinstance(value, list) else bool(value.strip())
    return value is not None


def task_statuses(record: Mapping[str, Any], errors: Mapping[str, Any]) -> dict[str, str]:
    """Each section's status: completed, incomplete, not started, or cannot start yet."""
    failing = {section_of(path) for path in errors}
    has_children = bool(items_of(record, "children"))
    statuses = {}
    for section in ORDER:
        present = (
            _given(page_data(section, record))
            if section not in LIST_SECTIONS
            else bool(items_of(record, section))
        )
        if section in NEEDS_CHILDREN and not has_children:
            statuses[section] = CANNOT_START
        elif not present:
            statuses[section] = NOT_STARTED
        else:
            statuses[section] = INCOMPLETE if section in failing else COMPLETED
    return statuses


def next_section(section: str) -> str | None:
    """The task after ``section``, or None after the last."""
    position = ORDER.index(section) + 1
    return ORDER[position] if position < len(ORDER) else None


def error_target(record: Mapping[str, Any], path: str) -> tuple[str, str, str, str]:
    """(section, item, path within its page, whose it is) for a record error path.

    An error about a list as a whole (or an item that is gone) has no item: its list page.
    """
    section = section_of(path)
    if section == BASICS or section in SCALAR_SECTIONS:
        return section, "", path, ""
    rest = path.partition(".")[2]
    if section not in LIST_SECTIONS:
        return section, "", rest, ""
    index, _, within = rest.partition(".")
    entries = items_of(record, section)
    if not (index.isascii() and index.isdigit()) or int(index) >= len(entries):
        return section, "", "", ""
    entry = entries[int(index)]
    if section != "safety_plans":
        return section, index, within, item_title(section, entry, int(index))
    ref = str(entry.get("child") or "")
    name = dict(child_choices(record)).get(ref)
    if name is None:
        return section, "", "", f"Safety plan {int(index) + 1}"
    return section, ref, within, f"Safety plan for {name}"
