"""The family's genogram, drawn server-side as an inline SVG from the record's household.

Generations are rows: grandparents on top, parents and other adults in the middle, the children
(and any household siblings) at the bottom. Standard symbols: a square is male, a circle female,
a diamond a person whose sex is not recorded; a diagonal cross marks a death; the children the
handover is about have a double outline. Solid lines join parents (a union line) and drop to
their children (a sibship line); dashed lines are the other ties the record names (grandparent,
step-parent, carer, ...); a dashed boundary surrounds those who live with the children.

The record names relationships only from a household member to a child, so nothing else is
inferred: a grandparent is tied to the grandchildren, never guessed to be a parent's parent.
The SVG is decorative for assistive technology beyond its title and description; ``relationships``
is its text alternative and says everything the drawing does. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from markupsafe import Markup

from handover.records import genogram_svg
from handover.records.genogram_svg import PARENTS, SIBLINGS, Family, Person, Tie

TIE_LABELS = {
    "mother": "mother",
    "father": "father",
    "step_parent": "step-parent",
    "sibling": "sibling",
    "half_sibling": "half-sibling",
    "grandparent": "grandparent",
    "partner_of_parent": "partner of a parent",
    "carer": "carer",
    "other": "other relationship",
}


@dataclass(frozen=True)
class Genogram:
    """The drawing and its text alternative."""

    svg: Markup
    relationships: list[str]


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _age(child: Mapping[str, Any], today: date) -> str:
    """What the label says under a child's name: age, unborn or died."""
    born = _date(child.get("date_of_birth"))
    if child.get("deceased"):
        died = _date(child.get("date_of_death"))
        return f"died {died.day} {died:%b %Y}" if died else "died"
    if born is None:
        return "unborn" if child.get("expected_due_date") else ""
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months < 24:
        return f"{max(months, 0)} month{'s' if months != 1 else ''}"
    return f"{months // 12} years"


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _member_generation(types: set[str]) -> int:
    if types & {*PARENTS, "step_parent", "partner_of_parent", "carer"}:
        return 1
    if types and types <= {"grandparent", "other"} and "grandparent" in types:
        return 0
    if types and types <= {*SIBLINGS, "other"} and types & set(SIBLINGS):
        return 2
    return 1


def family(record: Mapping[str, Any], *, today: date) -> Family:
    """The people and ties of a record, with generations but no positions yet."""
    people: dict[str, Person] = {}
    for i, child in enumerate(_items(record.get("children"))):
        ref = _text(child.get("ref")) or f"child-{i + 1}"
        sex = str(child["sex"]) if child.get("sex") in ("male", "female") else "unknown"
        people[ref] = Person(
            ref, _text(child.get("first_name")), _text(child.get("last_name")), sex, 2,
            index_child=True, deceased=bool(child.get("deceased")), resident=True,
            note=_age(child, today), order=i,
        )  # fmt: skip
    relations = _relations(record, people)
    for i, member in enumerate(_items(record.get("household"))):
        ref = _text(member.get("ref")) or f"person-{i + 1}"
        types = {kind for source, kind, _ in relations if source == ref}
        sex = "female" if "mother" in types else "male" if "father" in types else "unknown"
        people[ref] = Person(
            ref, _text(member.get("first_name")), _text(member.get("last_name")), sex,
            _member_generation(types), resident=member.get("lives_with_children") is True,
            order=100 + i,
        )  # fmt: skip
    return Family(people, _sibships(people, relations), _ties(relations), relations)


def _relations(
    record: Mapping[str, Any], children: Mapping[str, Person]
) -> list[tuple[str, str, str]]:
    found = []
    for i, member in enumerate(_items(record.get("household"))):
        ref = _text(member.get("ref")) or f"person-{i + 1}"
        for tie in _items(member.get("relationships")):
            kind, to = tie.get("type"), tie.get("to")
            if kind in TIE_LABELS and isinstance(to, str) and to in children:
                found.append((ref, str(kind), to))
    return found


def _sibships(
    people: Mapping[str, Person], relations: Sequence[tuple[str, str, str]]
) -> list[tuple[tuple[str, ...], list[str]]]:
    """Children grouped by their recorded parents, in order of first appearance."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for child in sorted((p for p in people.values() if p.index_child), key=lambda p: p.order):
        parents = sorted({s for s, kind, to in relations if to == child.ref and kind in PARENTS})
        groups.setdefault(tuple(parents), []).append(child.ref)
    return list(groups.items())


def _ties(relations: Sequence[tuple[str, str, str]]) -> list[Tie]:
    ties: dict[tuple[str, str], Tie] = {}
    for source, kind, to in relations:
        if kind not in PARENTS:
            ties.setdefault((source, kind), Tie(source, kind, [])).targets.append(to)
    return list(ties.values())


# The text alternative, and the whole.


def _names(refs: Sequence[str], people: Mapping[str, Person]) -> str:
    names = [people[ref].name for ref in refs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _child_line(child: Person) -> str:
    sex = {"male": "male", "female": "female"}.get(child.sex, "sex not recorded")
    note = f", {child.note}" if child.note else ""
    return f"{child.name}: a child this handover is about, {sex}{note}."


def describe(fam: Family) -> list[str]:
    """Every person and tie the drawing shows, as sentences."""
    people = fam.people
    lines = [_child_line(p) for p in people.values() if p.index_child]
    for parents, children in fam.sibships:
        if parents:
            kinds = {s: kind for s, kind, to in fam.relations if to == children[0] and s in parents}
            named = [f"{people[p].name} ({TIE_LABELS[kinds[p]]})" for p in parents]
            verb = "is the child" if len(children) == 1 else "are the children"
            lines.append(f"{_names(children, people)} {verb} of {' and '.join(named)}.")
    for tie in fam.ties:
        lines.append(
            f"{people[tie.source].name}: {TIE_LABELS[tie.kind]} of {_names(tie.targets, people)}."
        )
    adults = [p for p in people.values() if not p.index_child]
    living = [p.ref for p in adults if p.resident]
    apart = [p.ref for p in adults if not p.resident]
    if living:
        lines.append(f"Living with the children: {_names(living, people)}.")
    if apart:
        lines.append(f"Not living with the children: {_names(apart, people)}.")
    return lines


def _summary(fam: Family) -> str:
    children = sum(1 for p in fam.people.values() if p.index_child)
    adults = len(fam.people) - children
    return (
        f"{children} child{'ren' if children != 1 else ''} this handover is about, in the bottom "
        f"row, and {adults} other {'person' if adults == 1 else 'people'} in their network. "
        "The list of relationships beside the drawing describes each person and tie."
    )


def build(record: Mapping[str, Any], *, today: date) -> Genogram | None:
    """The genogram of a record, or None when it names no child yet."""
    fam = family(record, today=today)
    if not any(p.index_child for p in fam.people.values()):
        return None
    return Genogram(genogram_svg.draw(fam, summary=_summary(fam)), describe(fam))
