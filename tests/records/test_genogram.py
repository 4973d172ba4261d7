"""The genogram: generations in rows, standard symbols, the household boundary, escaped text
and a text alternative that says what the drawing shows. The SVG is parsed as XML."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest

from handover.records import genogram, genogram_svg
from tests.conftest import reference_record

SVG = "{http://www.w3.org/2000/svg}"
TODAY = date(2026, 11, 30)
Point = tuple[float, float]


def drawing(record: dict[str, Any]) -> ET.Element:
    found = genogram.build(record, today=TODAY)
    assert found is not None
    return ET.fromstring(str(found.svg))


def shapes(svg: ET.Element, tag: str, **attributes: str) -> list[ET.Element]:
    return [
        element
        for element in svg.iter(f"{SVG}{tag}")
        if all(element.get(key) == value for key, value in attributes.items())
    ]


def outer_centres(svg: ET.Element) -> list[tuple[str, Point]]:
    """Each person's symbol (the outer outline of a double one): its kind and centre."""
    found: list[tuple[str, Point]] = []
    for rect in shapes(svg, "rect"):
        if rect.get("width") == "40.0":
            found.append(("square", (float(rect.get("x", 0)) + 20, float(rect.get("y", 0)) + 20)))
    for circle in shapes(svg, "circle", r="20.0"):
        found.append(("circle", (float(circle.get("cx", 0)), float(circle.get("cy", 0)))))
    for polygon in shapes(svg, "polygon", fill="#ffffff"):
        points = [tuple(map(float, p.split(","))) for p in polygon.get("points", "").split()]
        if max(p[0] for p in points) - min(p[0] for p in points) > 40:  # the outer diamond
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            found.append(("diamond", ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)))
    return found


def people(svg: ET.Element) -> dict[str, tuple[str, Point]]:
    """Each person by their first label (the first name): the kind of symbol and its centre.

    A label shares its symbol's x and sits just above (adults) or below (children) it."""
    symbols = outer_centres(svg)
    named: dict[str, tuple[str, Point]] = {}
    labelled: set[Point] = set()
    for text in svg.iter(f"{SVG}text"):
        x, y = float(text.get("x", 0)), float(text.get("y", 0))
        same_x = [s for s in symbols if abs(s[1][0] - x) < 0.05]
        if not same_x or not text.text:
            continue
        kind, centre = min(same_x, key=lambda s: abs(s[1][1] - y))
        if centre not in labelled:
            labelled.add(centre)
            named[text.text] = (kind, centre)
    return named


def inside(point: Point, polygon: list[Point]) -> bool:
    """Ray casting: whether ``point`` is inside ``polygon``."""
    x, y, result = point[0], point[1], False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            result = not result
    return result


def test_generations_are_rows_with_standard_symbols() -> None:
    svg = drawing(reference_record())
    found = people(svg)
    assert {name: kind for name, (kind, _) in found.items()} == {
        "Gloria": "diamond",  # a grandparent's sex is not recorded
        "Andre": "square",
        "Sharon": "circle",
        "Dean": "square",
        "Jaylen": "square",
        "Tianna": "circle",
        "Malik": "square",
        "Shanice": "circle",
        "Kai": "square",
        "Ava": "circle",
    }
    y = {name: centre[1] for name, (_, centre) in found.items()}
    assert y["Gloria"] < y["Sharon"] == y["Andre"] == y["Dean"] < y["Jaylen"] == y["Ava"]
    rows: dict[float, list[float]] = {}
    for _, (x, row) in found.values():
        rows.setdefault(row, []).append(x)
    for xs in rows.values():
        xs.sort()
        assert all(b - a >= genogram_svg.COLUMN for a, b in zip(xs, xs[1:], strict=False))


def test_the_children_it_is_about_have_a_double_outline_and_a_death_is_crossed() -> None:
    svg = drawing(reference_record())
    inner_squares = shapes(svg, "rect", width="30.0")
    inner_circles = shapes(svg, "circle", r="15.0")
    assert (len(inner_squares), len(inner_circles)) == (3, 3)  # six index children, no adult
    x, y = people(svg)["Jaylen"][1]
    diagonals = {
        f"M{x - 20:.1f} {y - 20:.1f} L{x + 20:.1f} {y + 20:.1f}",
        f"M{x + 20:.1f} {y - 20:.1f} L{x - 20:.1f} {y + 20:.1f}",
    }
    crossed = [p for p in shapes(svg, "path") if p.get("d") in diagonals]
    assert len(crossed) == 2


def test_a_dashed_boundary_surrounds_exactly_those_who_live_with_the_children() -> None:
    svg = drawing(reference_record())
    (boundary,) = shapes(svg, "polygon", fill="none")
    assert boundary.get("stroke-dasharray")
    outline = [
        (float(x), float(y)) for x, y in (p.split(",") for p in boundary.get("points", "").split())
    ]
    where = {name: inside(centre, outline) for name, (_, centre) in people(svg).items()}
    assert where == {
        "Gloria": False,
        "Andre": True,
        "Sharon": True,
        "Dean": False,
        **dict.fromkeys(["Jaylen", "Tianna", "Malik", "Shanice", "Kai", "Ava"], True),
    }


def test_the_text_alternative_describes_every_person_and_tie() -> None:
    found = genogram.build(reference_record(), today=TODAY)
    assert found is not None
    assert found.relationships == [
        "Jaylen Marsh: a child this handover is about, male, died 28 Nov 2026.",
        "Tianna Marsh: a child this handover is about, female, 16 years.",
        "Malik Marsh: a child this handover is about, male, 13 years.",
        "Shanice Marsh: a child this handover is about, female, 8 years.",
        "Kai Marsh: a child this handover is about, male, 5 years.",
        "Ava Marsh-Cole: a child this handover is about, female, 2 years.",
        "Jaylen Marsh, Tianna Marsh, Malik Marsh, Shanice Marsh and Kai Marsh are the children"
        " of Sharon Marsh (mother) and Andre Marsh (father).",
        "Ava Marsh-Cole is the child of Sharon Marsh (mother) and Dean Cole (father).",
        "Andre Marsh: partner of a parent of Ava Marsh-Cole.",
        "Gloria Marsh: grandparent of Tianna Marsh, Malik Marsh, Shanice Marsh, Kai Marsh"
        " and Ava Marsh-Cole.",
        "Living with the children: Sharon Marsh and Andre Marsh.",
        "Not living with the children: Dean Cole and Gloria Marsh.",
    ]
    svg = ET.fromstring(str(found.svg))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "genogram-title genogram-desc"
    assert svg.find(f"{SVG}title").text == "Genogram of the family"  # type: ignore[union-attr]
    assert "6 children this handover is about" in (svg.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_no_style_attributes_and_names_are_escaped() -> None:
    record = reference_record()
    record["children"][0]["first_name"] = '<script>alert("x")</script>'
    record["household"][0]["last_name"] = "O'Brien & Sons"
    found = genogram.build(record, today=TODAY)
    assert found is not None
    text = str(found.svg)
    assert "<script>" not in text and "style=" not in text
    svg = ET.fromstring(text)  # still well-formed XML
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert '<script>alert("x"…' in labels  # cut to fit, as text
    assert "O'Brien & Sons" in labels


@pytest.mark.parametrize("sex", ["unknown", "not_stated", None])
def test_a_child_of_unrecorded_sex_is_a_diamond(sex: str | None) -> None:
    record = {"children": [{"ref": "c1", "first_name": "Sam", "sex": sex}]}
    assert people(drawing(record))["Sam"][0] == "diamond"


def test_ages_unborn_and_months() -> None:
    record = {
        "children": [
            {"ref": "c1", "first_name": "Bo", "date_of_birth": "2026-07-24"},
            {"ref": "c2", "first_name": "Unborn", "expected_due_date": "2027-02-01"},
        ]
    }
    labels = [t.text for t in drawing(record).iter(f"{SVG}text")]
    assert "4 months" in labels and "unborn" in labels


def test_a_household_sibling_joins_the_childrens_row_with_a_tie() -> None:
    record = reference_record()
    record["household"].append(
        {
            "ref": "p5",
            "first_name": "Jordan",
            "last_name": "Marsh",
            "relationships": [{"to": "c2", "type": "half_sibling"}],
            "lives_with_children": False,
        }
    )
    found = genogram.build(record, today=TODAY)
    assert found is not None
    placed = people(ET.fromstring(str(found.svg)))
    assert placed["Jordan"][1][1] == placed["Tianna"][1][1]
    assert placed["Jordan"][1][0] > placed["Ava"][1][0]  # after the children it is about
    assert "Jordan Marsh: half-sibling of Tianna Marsh." in found.relationships


def test_nothing_to_draw_without_a_child() -> None:
    assert genogram.build({"summary": "only a summary"}, today=TODAY) is None
    assert genogram.build({"children": "not a list"}, today=TODAY) is None


def test_bad_parts_of_a_draft_are_left_out_rather_than_failing() -> None:
    record = copy.deepcopy(reference_record())
    record["household"][0]["relationships"].append({"to": "nobody", "type": "mother"})
    record["household"][1]["relationships"] = [{"type": "father"}, "not a tie"]
    record["household"].append("not a person")
    record["children"][1]["date_of_birth"] = "not a date"
    found = genogram.build(record, today=TODAY)
    assert found is not None
    assert "Andre Marsh" not in " ".join(line for line in found.relationships if "father" in line)
