"""The genogram's layout and drawing: people placed in generation rows, lines routed between
them, and the whole written as SVG with presentation attributes only (no style attribute, so the
Content-Security-Policy holds). handover.records.genogram builds the family from a record and
gives the text alternative; this module only draws what it is given. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

PARENTS = ("mother", "father")
SIBLINGS = ("sibling", "half_sibling")
COLUMN, SYMBOL, MARGIN, LANE = 150, 40, 24, 12
LABEL_LINE, LABEL_CHARS = 15, 18
INK, GREY, BLUE = "#0b0c0c", "#505a5f", "#1d70b8"


@dataclass
class Person:
    """One symbol: a child of the record or a household member."""

    ref: str
    first: str
    last: str
    sex: str
    generation: int
    index_child: bool = False
    deceased: bool = False
    resident: bool = False
    note: str = ""
    order: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first, self.last) if part) or self.ref


@dataclass
class Tie:
    """A non-parental tie from a household member to one or more children, drawn dashed."""

    source: str
    kind: str
    targets: list[str]


@dataclass
class Family:
    """Everyone, the sibships (children by their set of parents) and the other ties."""

    people: dict[str, Person]
    sibships: list[tuple[tuple[str, ...], list[str]]]
    ties: list[Tie]
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (member, type, child)


# Layout: x by column within each generation's row, y by row with lanes for the lines between.


@dataclass
class Lanes:
    """The y of every horizontal line between the adults and the children."""

    union: dict[int, float] = field(default_factory=dict)  # by sibship index
    sibship: dict[int, float] = field(default_factory=dict)
    tie: dict[int, float] = field(default_factory=dict)  # by tie index
    above_children: float = 0.0  # grandparents' lines leave their row here
    row_bottom: dict[int, float] = field(default_factory=dict)
    height: float = 0.0


def _rows(people: Mapping[str, Person]) -> dict[int, list[Person]]:
    rows: dict[int, list[Person]] = {0: [], 1: [], 2: []}
    for person in people.values():
        rows[person.generation].append(person)
    return rows


def _centre(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("inf")


def _place_row(row: list[Person], desired: Mapping[str, float]) -> None:
    """Left to right by (lives with the children first, wanted x), a column apart at least."""
    row.sort(key=lambda p: (not p.resident, desired.get(p.ref, float("inf")), p.order))
    previous = MARGIN + COLUMN / 2 - COLUMN
    for person in row:
        wanted = desired.get(person.ref, previous + COLUMN)
        person.x = previous = max(wanted if wanted != float("inf") else 0.0, previous + COLUMN)


def _place_x(fam: Family) -> dict[int, list[Person]]:
    rows = _rows(fam.people)
    order = [ref for _, children in fam.sibships for ref in children]
    for column, ref in enumerate(order):
        fam.people[ref].x = MARGIN + COLUMN / 2 + column * COLUMN
    xs = {ref: fam.people[ref].x for ref in order}
    parental = {
        p: _centre([xs[to] for s, kind, to in fam.relations if s == p and kind in PARENTS])
        for p in fam.people
    }
    related = {p: _centre([xs[to] for s, _, to in fam.relations if s == p]) for p in fam.people}
    desired = {p: parental[p] if parental[p] != float("inf") else related[p] for p in fam.people}
    children = sorted((p for p in rows[2] if p.index_child), key=lambda p: p.x)
    others = sorted(
        (p for p in rows[2] if not p.index_child),
        key=lambda p: (not p.resident, desired.get(p.ref, float("inf")), p.order),
    )
    for column, person in enumerate(others, start=len(children)):
        person.x = MARGIN + COLUMN / 2 + column * COLUMN
    rows[2] = children + others
    _place_row(rows[1], desired)
    _place_row(rows[0], desired)
    return rows


def _place_y(fam: Family, rows: Mapping[int, list[Person]]) -> Lanes:
    lanes, cursor = Lanes(), float(MARGIN)
    for generation in (0, 1):
        if not rows[generation]:
            continue
        cursor += 2 * LABEL_LINE + 6  # names above the symbol
        for person in rows[generation]:
            person.y = cursor + SYMBOL / 2
        cursor += SYMBOL
        lanes.row_bottom[generation] = cursor
        cursor += 16 if generation == 1 or not rows[1] else 36
        if generation == 0:
            lanes.above_children = lanes.row_bottom[0] + 12
    for i, (parents, _) in enumerate(fam.sibships):
        if len(parents) > 1:
            lanes.union[i], cursor = cursor, cursor + LANE
    for i in range(len(fam.ties)):
        lanes.tie[i], cursor = cursor, cursor + LANE
    for i, (parents, _) in enumerate(fam.sibships):
        if parents:
            lanes.sibship[i], cursor = cursor, cursor + LANE
    cursor += 14
    for person in rows[2]:
        person.y = cursor + SYMBOL / 2
    lanes.row_bottom[2] = cursor + SYMBOL
    lanes.height = cursor + SYMBOL + 3 * LABEL_LINE + MARGIN
    return lanes


# Drawing: SVG elements as escaped strings, with presentation attributes only (no style).

Point = tuple[float, float]


def _path(points: Sequence[Point], *, colour: str = INK, dashed: bool = False) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f} {y:.1f}" for i, (x, y) in enumerate(points))
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'


def _shape(person: Person, size: float) -> str:
    x, y, paint = person.x, person.y, f'fill="#ffffff" stroke="{INK}" stroke-width="2"'
    if person.sex == "male":
        corner = f'x="{x - size:.1f}" y="{y - size:.1f}"'
        return f'<rect {corner} width="{2 * size}" height="{2 * size}" {paint}/>'
    if person.sex == "female":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size}" {paint}/>'
    reach = size * 1.15
    corners = [(x, y - reach), (x + reach, y), (x, y + reach), (x - reach, y)]
    return f'<polygon points="{_points(corners)}" {paint}/>'


def _points(points: Sequence[Point]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _labels(person: Person) -> list[str]:
    if person.generation == 2:
        lines = [person.first, person.last, person.note]
        ys = [person.y + SYMBOL / 2 + (i + 1) * LABEL_LINE for i in range(3)]
    else:  # adults' names sit above them, leaving the space below for the lines
        lines = [person.first, person.last]
        ys = [person.y - SYMBOL / 2 - 6 - (1 - i) * LABEL_LINE for i in range(2)]
    return [
        f'<text x="{person.x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="13" '
        f'fill="{INK}">{escape(_short(line))}</text>'
        for line, y in zip(lines, ys, strict=True)
        if line
    ]


def _symbol(person: Person) -> list[str]:
    parts = [_shape(person, SYMBOL / 2)]
    if person.index_child:
        parts.append(_shape(person, SYMBOL / 2 - 5))
    if person.deceased:
        r = SYMBOL / 2
        parts.append(_path([(person.x - r, person.y - r), (person.x + r, person.y + r)]))
        parts.append(_path([(person.x + r, person.y - r), (person.x - r, person.y + r)]))
    return parts + _labels(person)


def _parent_lines(fam: Family, lanes: Lanes) -> list[str]:
    """Union lines between parents, and the sibship line down to their children."""
    out = []
    for i, (parents, children) in enumerate(fam.sibships):
        if not parents:
            continue
        xs = [fam.people[p].x for p in parents]
        top, descent = fam.people[parents[0]].y, xs[0]
        if len(parents) > 1:
            others = [
                p.x for p in fam.people.values() if p.generation == 2 and p.ref not in children
            ]
            top, descent = lanes.union[i], _descent(xs, [fam.people[c].x for c in children], others)
            out += [
                _path([(fam.people[p].x, fam.people[p].y), (fam.people[p].x, top)]) for p in parents
            ]
            out.append(_path([(min(xs), top), (max(xs), top)]))
        low = lanes.sibship[i]
        kids = [fam.people[c] for c in children]
        span = [descent, *(kid.x for kid in kids)]
        out += [
            _path([(descent, top), (descent, low)]),
            _path([(min(span), low), (max(span), low)]),
        ]
        out += [_path([(kid.x, low), (kid.x, kid.y)]) for kid in kids]
    return out


def _descent(parents: Sequence[float], own: Sequence[float], others: Sequence[float]) -> float:
    """Where children hang from their parents' union line: its middle, unless that is on
    another child's line; then above them, within the line, and clear of the others."""

    def clear(x: float) -> bool:
        return all(abs(x - other) >= 8 for other in others)

    x = (min(parents) + max(parents)) / 2
    if clear(x):
        return x
    low, high = min(parents) + 20, max(parents) - 20
    x = min(max(_centre(own), low), high) if low <= high else x
    while not clear(x):
        x += 12
    return x


def _gaps(fam: Family, row: Sequence[Person]) -> list[float]:
    """Where a grandparent's line can pass the adults' row: the ends, and between non-couples."""
    ordered = sorted(row, key=lambda p: p.x)
    couples = [set(parents) for parents, _ in fam.sibships if len(parents) > 1]
    gaps = [ordered[0].x - COLUMN / 2, ordered[-1].x + COLUMN / 2]
    for left, right in zip(ordered, ordered[1:], strict=False):
        if not any({left.ref, right.ref} <= couple for couple in couples):
            gaps.append((left.x + right.x) / 2 + 12)
    return gaps


def _route(fam: Family, tie: Tie, y: float, lanes: Lanes, gaps: dict[float, int]) -> list[Point]:
    """From the tie's source down (or, for a sibling, up) to the tie's lane."""
    source = fam.people[tie.source]
    if source.generation == 0 and gaps:
        gap = min(gaps, key=lambda g: abs(g - source.x))
        x, gaps[gap] = gap + 8 * gaps[gap], gaps[gap] + 1
        return [
            (source.x, source.y),
            (source.x, lanes.above_children),
            (x, lanes.above_children),
            (x, y),
        ]
    side = 0 if source.generation == 2 else -1 if _left_partner(fam, source) else 1
    x = source.x + 10 * side
    return [(x, source.y), (x, y)]


def _left_partner(fam: Family, person: Person) -> bool:
    """Whether the person's children hang to their right (so their other lines go left)."""
    for parents, _ in fam.sibships:
        if person.ref in parents and len(parents) > 1:
            return person.x == min(fam.people[p].x for p in parents)
    return False


def _tie_lines(fam: Family, rows: Mapping[int, list[Person]], lanes: Lanes) -> list[str]:
    """Each other tie: from its source to a lane, along it, and down to each child it names."""
    out, ticks = [], dict.fromkeys(fam.people, 0)
    gaps = dict.fromkeys(_gaps(fam, rows[1]), 0) if rows[1] else {}
    for i, tie in enumerate(fam.ties):
        y, sibling = lanes.tie[i], tie.kind in SIBLINGS
        route = _route(fam, tie, y, lanes, gaps)
        xs = [route[-1][0]]
        for ref in tie.targets:
            n, ticks[ref] = ticks[ref], ticks[ref] + 1
            x = fam.people[ref].x + (10 + 8 * (n // 2)) * (1 if n % 2 == 0 else -1)
            xs.append(x)
            out.append(_path([(x, y), (x, fam.people[ref].y)], colour=GREY, dashed=not sibling))
        out.append(_path(route, colour=GREY, dashed=not sibling))
        out.append(_path([(min(xs), y), (max(xs), y)], colour=GREY, dashed=not sibling))
    return out


def _boundary(rows: Mapping[int, list[Person]], lanes: Lanes) -> list[str]:
    """A dashed outline around everyone who lives with the children, row by row."""
    bands = []
    for generation in (0, 1, 2):
        xs = [p.x for p in rows[generation] if p.resident]
        if xs:
            # Inset from the column edges, where the lines between generations run: the outline
            # stays clear of them and of the longest label a column holds.
            bands.append((generation, min(xs) - COLUMN / 2 + 10, max(xs) + COLUMN / 2 - 10))
    if not bands:
        return []
    right: list[Point] = []
    left: list[Point] = []
    first = bands[0][0]
    top = lanes.row_bottom[first] - SYMBOL - (8 if first == 2 else 2 * LABEL_LINE + 12)
    for generation, x0, x1 in bands:
        bottom = lanes.row_bottom[generation] + (3 * LABEL_LINE + 8 if generation == 2 else 8)
        right += [(x1, top), (x1, bottom)]
        left += [(x0, top), (x0, bottom)]
        top = bottom
    return [
        f'<polygon points="{_points(right + left[::-1])}" fill="none" stroke="{BLUE}" '
        'stroke-width="2" stroke-dasharray="14 6"/>'
    ]


def draw(fam: Family, *, summary: str) -> Markup:
    """The family as an SVG image titled "Genogram of the family", described by ``summary``."""
    rows = _place_x(fam)
    lanes = _place_y(fam, rows)
    width = int(max(p.x for p in fam.people.values()) + COLUMN / 2 + MARGIN)
    height = int(lanes.height)
    symbols = [part for p in fam.people.values() for part in _symbol(p)]
    body = [*_boundary(rows, lanes), *_parent_lines(fam, lanes), *_tie_lines(fam, rows, lanes)]
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="app-genogram__drawing" role="img" '
        f'aria-labelledby="genogram-title genogram-desc" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        '<title id="genogram-title">Genogram of the family</title>'
        f'<desc id="genogram-desc">{escape(summary)}</desc>'
        f"{''.join(body + symbols)}</svg>"
    )
