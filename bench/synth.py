"""Synthetic handovers for the benchmarks: realistic in shape, fictional in content, quick to store.

``Generator`` makes families (children, adults, an address, maybe a crime reference) and files
one to four handovers about each, so records link to each other at the same rate whatever the
table's size. Every record is complete: a sample is checked against the submit standard.

``BulkWriter`` stores records as ``records.service`` would (a data key per record wrapped by the
active KEK, each section sealed by ``records.storage``, blind indexes from ``records.linking``,
version, events, the transfer job of a scheduled record) but many records per statement. Set-up
is not audited: the benchmarks' own work is.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from handover import crypto
from handover.db import new_id, transaction
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.records import linking, sections, standard, storage
from handover.records.models import (
    Handover,
    HandoverEvent,
    HandoverSection,
    HandoverVersion,
    LinkDigest,
    LinkMatch,
    ReferenceCounter,
)
from handover.timeutil import isoformat, to_london

TEAMS = {
    "northvale": ("northvale-east-fst", "northvale-mash"),
    "southmoor": ("southmoor-fst",),
    "eastbury": ("eastbury-fst",),
}
AREAS = {"northvale": "NV", "southmoor": "SM", "eastbury": "EB"}
POLICE_TEAM = "westshire-cait"
AUTHOR = "erin.walsh@tri-borough.example"
SURNAMES = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen "
    "James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook "
    "Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson "
    "Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Ali "
    "Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell "
    "Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur "
    "Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks "
    "West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts Rose "
    "Booth Perry Ryan Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster "
    "Hunter Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland "
    "Hawkins Harding Porter Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah "
    "Dean Lane Cooke Bates Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross "
    "Cross Long Freeman Warren Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson "
    "Nowak Kowalski Okafor Adeyemi Mensah Osei Yildiz Nguyen Popescu Ionescu Horvat Da Silva"
).split()
GIRLS = (
    "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Willow Florence Emily "
    "Ella Poppy Evie Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie Alice Harper Matilda "
    "Ruby Emilia Maya Millie Isabelle Eva Luna Jessica Aria Maisie Esme Zara Hannah Amira Aisha "
    "Maryam Fatima Zainab Nia Chloe Holly Layla Mila Thea Ellie Lola Erin Tianna Kayla Leah"
).split()
BOYS = (
    "Noah Muhammad George Oliver Leo Arthur Oscar Theodore Freddie Archie Theo Henry Charlie "
    "Finley Alfie Jacob Thomas Teddy Lucas Isaac Tommy Arlo Louie Jack Ezra Max Harry Luca Rory "
    "Reggie Albert Ronnie Tobias Edward Joshua Elijah Mason Jaxon Hunter Sonny Hugo Ibrahim "
    "Yusuf Ayaan Adam Ali Omar Kai Dylan Jayden Jaylen Kyle Callum Connor Liam Ethan Mohammed"
).split()
ADULT_WOMEN = (
    "Sharon Kelly Lisa Donna Emma Stacey Gemma Kerry Leanne Amy Nadia Samira Joanne".split()
)
ADULT_MEN = "Dean Wayne Craig Lee Darren Jamie Ryan Gary Paul Mark Tariq Imran Marek Tomasz".split()
STREETS = "Larch Close|Station Road|Mill Lane|Church Street|Park View|Orchard Way|Victoria Road"
STREET_NAMES = STREETS.split("|") + ["Elm Grove", "Meadow Rise", "Canal Side", "Beech Avenue"]
ETHNICITIES = (
    "White British",
    "White British",
    "White British",
    "Black British - Caribbean",
    "Black British - African",
    "Asian British - Pakistani",
    "Asian British - Bangladeshi",
    "Mixed - White and Black Caribbean",
    "White - Polish",
    "White - Romanian",
)
CATEGORIES = (
    "physical_abuse",
    "sexual_abuse",
    "emotional_abuse",
    "neglect",
    "domestic_abuse",
    "child_exploitation",
    "unexplained_injury",
    "missing",
    "mental_health",
)
SOURCES = ("police", "health", "school", "family", "public", "other_la", "edt")
THRESHOLDS = ("level_2_early_help", "level_3_child_in_need", "level_4_child_protection")
SENTENCES = (
    "Police attended after a neighbour reported shouting and a child crying for over an hour.",
    "The mother says the injury happened at nursery; nursery staff say it was not there on pickup.",
    "The older sibling disclosed to a teacher that she is often left to care for the younger ones.",
    "Both parents were intoxicated when officers arrived; the flat was cold and there was no food.",
    "There is a history of domestic abuse going back four years, with two MARAC referrals.",
    "The child was found walking alone near the canal at 23:40 and could not say where she lived.",
    "Hospital staff are concerned about the explanation given for a spiral fracture of the arm.",
    "Grandmother has agreed to look after the children until the day team can assess tomorrow.",
    "The young person was reported missing for the third time this month and returned at 02:00.",
    "Father has been arrested and bailed with conditions not to contact the mother or children.",
    "School have raised concerns about attendance, weight loss and unwashed uniform since June.",
    "The baby's bruising was seen by the health visitor; the parents gave no account of it.",
    "Mother disclosed that her partner controls the money and has threatened to take the children.",
    "The child says she does not want to go home because of her stepfather's temper.",
    "Previous involvement ended in 2023 with a step-down to early help, which the family declined.",
)


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.sample(SENTENCES, rng.randint(low, high)))


def _nhs_number(rng: random.Random) -> str:
    """A random NHS number that passes the modulus 11 check."""
    while True:
        digits = "9" + "".join(str(rng.randint(0, 9)) for _ in range(8))
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return digits + str(check)


@dataclass
class Family:
    """The people a cluster of handovers is about."""

    la: str
    team: str
    surname: str
    postcode: str
    street: str
    children: list[dict[str, Any]]
    adults: list[dict[str, Any]]
    crime_reference: str | None


@dataclass
class Generator:
    """Seeded, so that every run (and both sizes of a benchmark) sees the same kind of data."""

    seed: int
    rng: random.Random = field(init=False)
    _person: int = 0
    _crime: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _date_of_birth(self, at: datetime, low_days: int, high_days: int) -> str:
        return (at.date() - timedelta(days=self.rng.randint(low_days, high_days))).isoformat()

    def _crime_reference(self) -> str:
        self._crime += 1
        return f"WS/{self.rng.randint(20, 26)}/{self._crime:07d}"

    def family(self, at: datetime) -> Family:
        """A household of one to four children and one to three adults, somewhere in one LA."""
        rng = self.rng
        la = rng.choice(list(TEAMS))
        surname = rng.choice(SURNAMES)
        area = AREAS[la]
        unit = "".join(rng.choices("ABDEFGHJLNPQRSTUWXYZ", k=2))
        postcode = f"{area}{rng.randint(1, 40)} {rng.randint(1, 9)}{unit}"
        street = f"{rng.randint(1, 180)} {rng.choice(STREET_NAMES)}"
        children = []
        for index in range(rng.choices((1, 2, 3, 4), weights=(40, 30, 20, 10))[0]):
            self._person += 1
            girl = rng.random() < 0.5
            children.append(
                {
                    "ref": f"c{index + 1}",
                    "first_name": rng.choice(GIRLS if girl else BOYS),
                    "last_name": surname if rng.random() < 0.85 else rng.choice(SURNAMES),
                    "date_of_birth": self._date_of_birth(at, 60, 17 * 365),
                    "sex": "female" if girl else "male",
                    "nhs_number": _nhs_number(rng) if rng.random() < 0.8 else None,
                    "la_person_id": f"{area}-{self._person:07d}" if rng.random() < 0.5 else None,
                }
            )
        adults = []
        for index, (kind, names) in enumerate(
            rng.sample(
                [("mother", ADULT_WOMEN), ("father", ADULT_MEN), ("grandparent", ADULT_WOMEN)],
                rng.randint(1, 3),
            )
        ):
            adults.append(
                {
                    "ref": f"p{index + 1}",
                    "first_name": rng.choice(names),
                    "last_name": surname
                    if kind != "father" or rng.random() < 0.6
                    else rng.choice(SURNAMES),
                    "date_of_birth": self._date_of_birth(
                        at, 20 * 365, 70 * 365 if kind == "grandparent" else 45 * 365
                    ),
                    "kind": kind,
                }
            )
        crime = self._crime_reference() if rng.random() < 0.4 else None
        team = rng.choice(TEAMS[la])
        return Family(la, team, surname, postcode, street, children, adults, crime)

    def clusters(
        self, count: int, *, start: datetime, end: datetime
    ) -> Iterator[tuple[Family, datetime]]:
        """``count`` (family, filing time) pairs: families of one to four handovers each."""
        made, span = 0, (end - start).total_seconds()
        while made < count:
            first = start + timedelta(seconds=self.rng.uniform(0, span))
            family = self.family(first)
            size = self.rng.choices((1, 2, 3, 4), weights=(55, 25, 12, 8))[0]
            for repeat in range(min(size, count - made)):
                at = min(end, first + timedelta(days=self.rng.uniform(0, 200) * repeat))
                made += 1
                yield family, at

    def record(self, family: Family, at: datetime) -> dict[str, Any]:
        """A complete handover about ``family`` filed at ``at``: meets the submit standard."""
        rng = self.rng
        children = [self._child(family, child, at) for child in family.children]
        level_4 = rng.random() < 0.4
        police = rng.random() < 0.55 or family.crime_reference is not None
        record: dict[str, Any] = {
            "template_version": 1,
            "local_authority": family.la,
            "allocated_team": family.team,
            "urgency": rng.choices(("immediate", "priority", "routine"), weights=(3, 4, 3))[0],
            "summary": _text(rng, 2, 4),
            "contact": {
                "received_at": isoformat(at - timedelta(minutes=rng.randint(20, 300))),
                "source": rng.choice(SOURCES),
                "referrer_name": f"{rng.choice(ADULT_WOMEN + ADULT_MEN)} {rng.choice(SURNAMES)}",
                "referrer_agency": rng.choice(
                    ("Westshire Police", "Northvale General", "St Mary's Primary")
                ),
                "referrer_phone": f"01632 960 {rng.randint(100, 999)}",
            },
            "concern": {
                "categories": rng.sample(CATEGORIES, rng.randint(1, 3)),
                "description": _text(rng, 2, 4),
                "threshold": THRESHOLDS[2] if level_4 else rng.choice(THRESHOLDS[:2]),
            },
            "children": children,
            "household": [self._adult(family, adult, children) for adult in family.adults],
            "professionals": [
                {
                    "name": f"{rng.choice(ADULT_WOMEN + ADULT_MEN)} {rng.choice(SURNAMES)}",
                    "agency": agency,
                    "role": role,
                    "phone": f"01632 960 {rng.randint(100, 999)}",
                }
                for agency, role in rng.sample(
                    [
                        ("Westshire Police", "PC"),
                        ("Health", "Health visitor"),
                        ("Education", "DSL"),
                        ("GP", "GP"),
                    ],
                    rng.randint(1, 3),
                )
            ],
            "timeline": [
                {
                    "at": isoformat(at - timedelta(minutes=30 * (5 - i))),
                    "event": rng.choice(SENTENCES),
                    "source": rng.choice(SOURCES),
                }
                for i in range(rng.randint(2, 5))
            ],
            "analysis": {
                "risks": _text(rng, 1, 3),
                "strengths": _text(rng, 1, 2),
                "protective_factors": _text(rng, 1, 2),
                "known": _text(rng, 1, 2),
                "unknown": _text(rng, 1, 2),
                "ambiguous": _text(rng, 1, 1),
                "missing": _text(rng, 1, 1),
                "hypotheses": [{"statement": rng.choice(SENTENCES), "status": "to_test"}],
            },
            "contingency": _text(rng, 1, 2),
            "actions": [
                {
                    "ref": f"a{i + 1}",
                    "what": rng.choice(SENTENCES),
                    "owner_agency": rng.choice(("social_care", "police", "health")),
                    "owner_name": "Allocated team manager",
                    "due_by": isoformat(at + timedelta(days=rng.randint(1, 5))),
                    "why": rng.choice(SENTENCES),
                }
                for i in range(rng.randint(1, 3))
            ],
            "equality_and_diversity": _text(rng, 1, 1),
            "consent": {"obtained": rng.random() < 0.6, "details": _text(rng, 1, 1)},
            "confidential_from_family": _text(rng, 1, 1),
        }
        if rng.random() < 0.5:
            record["strategy_discussion"] = {
                "held": True,
                "held_at": isoformat(at - timedelta(minutes=15)),
                "chair": f"{rng.choice(ADULT_MEN)} {rng.choice(SURNAMES)} (EDT)",
                "attendees": [
                    {
                        "name": f"{rng.choice(ADULT_WOMEN)} {rng.choice(SURNAMES)}",
                        "agency": "social_care",
                        "role": "EDT social worker",
                    },
                    {
                        "name": f"{rng.choice(ADULT_MEN)} {rng.choice(SURNAMES)}",
                        "agency": "police",
                        "role": "DS",
                    },
                ],
                "decision": rng.choice(
                    ("section_47_single", "section_47_joint", "child_in_need_assessment")
                ),
                "rationale": _text(rng, 1, 2),
            }
        if police:
            reference = family.crime_reference or (
                self._crime_reference() if rng.random() < 0.7 else None
            )
            record["police"] = {
                "involved": True,
                "force": "Westshire Police",
                "team_code": POLICE_TEAM,
                "officer": f"DC {rng.choice(ADULT_MEN)} {rng.choice(SURNAMES)}",
                "crime_reference": reference,
                "incident_reference": f"WS-{at:%Y%m%d}-{rng.randint(1, 9999):04d}",
                "powers_used": rng.choice(("none", "none", "police_protection", "arrest")),
            }
            if reference is None:
                del record["police"]["crime_reference"]
        if rng.random() < 0.3:
            record["medical"] = {
                "required": True,
                "type": "child_protection_medical",
                "arranged_at": isoformat(at + timedelta(hours=rng.randint(6, 30))),
                "location": "Northvale General",
                "pending_results": _text(rng, 1, 1),
            }
        if level_4:
            record["safety_plans"] = [
                {
                    "child": child["ref"],
                    "arrangements": _text(rng, 1, 2),
                    "rationale": _text(rng, 1, 2),
                    "agreed_with": "Mother, grandmother",
                    "review_by": isoformat(at + timedelta(days=2)),
                }
                for child in children
            ]
        return record

    def _child(self, family: Family, child: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        rng = self.rng
        out = {k: v for k, v in child.items() if v is not None}
        out.update(
            {
                "ethnicity": rng.choice(ETHNICITIES),
                "first_language": "English",
                "interpreter_needed": False,
                "address": {
                    "line1": family.street,
                    "town": family.la.title(),
                    "postcode": family.postcode,
                },
                "legal_status": rng.choice(
                    ("none", "none", "child_in_need", "child_protection_plan")
                ),
                "deceased": False,
                "whereabouts_now": rng.choice(
                    (
                        "At home with mother",
                        "With maternal grandmother",
                        "In hospital, ward 4",
                        "Emergency foster placement",
                    )
                ),
                "seen": {
                    "by": f"PC {rng.choice(ADULT_MEN)} {rng.choice(SURNAMES)}",
                    "at": isoformat(at - timedelta(hours=1)),
                    "spoken_to_alone": rng.random() < 0.3,
                },
                "voice_of_child": _text(rng, 1, 1),
                "needs_and_risks": _text(rng, 1, 2),
            }
        )
        return out

    def _adult(
        self, family: Family, adult: Mapping[str, Any], children: list[dict[str, Any]]
    ) -> dict[str, Any]:
        refs = [child["ref"] for child in children]
        kind = adult["kind"]
        return {
            "ref": adult["ref"],
            "first_name": adult["first_name"],
            "last_name": adult["last_name"],
            "date_of_birth": adult["date_of_birth"],
            "relationships": [{"to": ref, "type": kind} for ref in refs],
            "parental_responsibility_for": refs if kind != "grandparent" else [],
            "lives_with_children": kind != "grandparent",
            "address": {"line1": family.street, "postcode": family.postcode},
            "role_in_concern": self.rng.choice(
                ("none", "unknown", "alleged_perpetrator", "protective")
            ),
            "notes": _text(self.rng, 1, 2),
        }


def check_sample(generator: Generator, count: int = 25) -> None:
    """Fail loudly if synthetic records would not pass the submit standard."""
    at = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    for family, when in generator.clusters(count, start=at - timedelta(days=30), end=at):
        record = generator.record(family, when)
        errors = standard.validate_submit(record, today=to_london(at).date())
        if errors:
            raise AssertionError(f"synthetic record fails the standard: {sorted(errors)}")


@dataclass
class Filing:
    """Where a stored record stands: status and the plaintext routing and timing columns."""

    status: str
    created_at: datetime
    due_at: datetime | None = None


class BulkWriter:
    """Stores many records per statement; ``flush`` writes what ``add`` collected."""

    def __init__(
        self, session: Session, *, keyring: crypto.Keyring, author_id: str, author_team: str
    ) -> None:
        self.session, self.keyring = session, keyring
        self.author_id, self.author_team = author_id, author_team
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.matches: dict[str, str] = {}
        self.counters: dict[int, int] = {}
        self.ids: list[str] = []

    def _row(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def _reference(self, at: datetime) -> str:
        year = to_london(at).year
        if year not in self.counters:
            stored = self.session.get(ReferenceCounter, year)
            self.counters[year] = stored.last if stored is not None else 0
        self.counters[year] += 1
        return f"HO-{year}-{self.counters[year]:06d}"

    def add(self, record: Mapping[str, Any], filing: Filing) -> str:
        """Queue one record, sealed under its own data key; returns its id."""
        handover_id, at = new_id(), filing.created_at
        dek = crypto.new_dek()
        submitted = filing.status != "draft"
        stored = {k: v for k, v in sections.split(record).items() if v is not None}
        team = record.get("allocated_team")
        delivered = filing.status in ("delivered", "acknowledged", "closed")
        self._row(
            "handover",
            {
                "id": handover_id,
                "reference": self._reference(at),
                "template_version": 1,
                "status": filing.status,
                "urgency": record.get("urgency"),
                "local_authority_code": record.get("local_authority"),
                "allocated_team_code": team,
                "team_code": team if submitted else None,
                "author_team_code": self.author_team,
                "police_team_code": (record.get("police") or {}).get("team_code"),
                "created_by_id": self.author_id,
                "created_at": at,
                "updated_at": at,
                "submitted_at": at if submitted else None,
                "due_at": filing.due_at if submitted else None,
                "delivered_at": filing.due_at if delivered else None,
                "acknowledged_at": filing.due_at
                if filing.status in ("acknowledged", "closed")
                else None,
                "escalation_level": 0,
                "delivery_round": 1,
                "open_queries": 0,
                "current_version": 1,
                "completeness": 100,
                "wrapped_dek": crypto.wrap_dek(self.keyring, dek, record_id=handover_id),
                "kek_id": self.keyring.active_kek_id,
            },
        )
        self._row(
            "version",
            {
                "handover_id": handover_id,
                "version": 1,
                "kind": "original",
                "created_at": at,
                "created_by_id": self.author_id,
                "sections": ",".join(sorted(stored)) if submitted else "",
            },
        )
        for name, value in stored.items():
            self._row(
                "section",
                {
                    "handover_id": handover_id,
                    "version": 1,
                    "section": name,
                    "ciphertext": storage.seal_section(dek, handover_id, 1, name, value),
                },
            )
        self._events(handover_id, filing)
        self._digests(handover_id, record)
        if filing.status == "scheduled" and filing.due_at is not None:
            job = ScheduledJob.transfer(
                handover_id=handover_id, delivery_round=1, due_at=filing.due_at, now=at
            )
            self._row(
                "job",
                {
                    c.name: getattr(job, c.key)
                    for c in ScheduledJob.__table__.columns
                    if c.name != "lease_until"
                },
            )
        self.ids.append(handover_id)
        return handover_id

    def _events(self, handover_id: str, filing: Filing) -> None:
        steps = [("created", "draft", "draft", filing.created_at)]
        path = ("scheduled", "delivered", "acknowledged", "closed")
        if filing.status in path:
            steps.append(("submitted", "draft", "scheduled", filing.created_at))
            previous = "scheduled"
            for status in path[1 : path.index(filing.status) + 1]:
                steps.append((status, previous, status, filing.due_at or filing.created_at))
                previous = status
        for kind, before, after, at in steps:
            self._row(
                "event",
                {
                    "id": new_id(),
                    "handover_id": handover_id,
                    "at": at,
                    "actor_id": None if kind == "delivered" else self.author_id,
                    "kind": kind,
                    "from_status": before,
                    "to_status": after,
                    "version": 1,
                },
            )

    def _digests(self, handover_id: str, record: Mapping[str, Any]) -> None:
        values = linking.link_values(record, local_authority=record.get("local_authority"))
        for kind, found in values.items():
            for value in found:
                match_id = None
                if kind == linking.CRIME_REFERENCE:
                    match_id = self.matches.get(value)
                    if match_id is None:
                        match_id = self.matches[value] = new_id()
                        self._row(
                            "match",
                            {
                                "id": match_id,
                                "kind": kind,
                                "digest": linking.digest(self.keyring, kind, value),
                            },
                        )
                self._row(
                    "digest",
                    {
                        "handover_id": handover_id,
                        "kind": kind,
                        "digest": linking.digest(self.keyring, kind, value),
                        "match_id": match_id,
                    },
                )

    def flush(self) -> None:
        """Insert everything queued, parents first, many rows per statement."""
        tables = (
            ("match", LinkMatch),
            ("handover", Handover),
            ("version", HandoverVersion),
            ("section", HandoverSection),
            ("event", HandoverEvent),
            ("digest", LinkDigest),
            ("job", ScheduledJob),
        )
        for name, model in tables:
            rows = self.rows.pop(name, [])
            if rows:
                self.session.execute(sa.insert(model.__table__), rows)

    def finish(self) -> None:
        """Flush, and move the reference counters past the references used."""
        self.flush()
        for year, last in self.counters.items():
            counter = self.session.get(ReferenceCounter, year) or ReferenceCounter(
                year=year, last=0
            )
            counter.last = max(counter.last, last)
            self.session.add(counter)
        self.session.flush()


def today_of(at: datetime) -> date:
    """The London date of an instant."""
    return to_london(at).date()


FilingRule = Callable[[Mapping[str, Any], datetime, random.Random], Filing]


def populate(
    app: Flask,
    *,
    keyring: crypto.Keyring,
    count: int,
    seed: int,
    start: datetime,
    end: datetime,
    filing: FilingRule,
    chunk: int = 2000,
) -> list[str]:
    """Store ``count`` synthetic records filed between ``start`` and ``end``; returns their ids."""
    generator = Generator(seed)
    check_sample(Generator(seed + 1))
    ids: list[str] = []
    pending = generator.clusters(count, start=start, end=end)
    with app.app_context():
        while len(ids) < count:
            with transaction() as session:
                author = directory.get_user_by_email(session, AUTHOR)
                assert author is not None
                writer = BulkWriter(
                    session, keyring=keyring, author_id=author.id, author_team=author.team_code
                )
                for family, at in itertools.islice(pending, chunk):
                    record = generator.record(family, at)
                    writer.add(record, filing(record, at, generator.rng))
                writer.finish()
            ids += writer.ids
    return ids
