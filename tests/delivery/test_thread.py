"""The query thread: encrypted messages, open queries, answers that resolve them, who may write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.db import transaction
from handover.delivery.models import HandoverMessage
from tests.conftest import Api
from tests.delivery.conftest import (
    create,
    delivered,
    handover_row,
    jobs,
    message_rows,
    outbox,
    read_back,
    record_for,
)

QUESTION = "Has the grandmother agreed to keep the older children until Wednesday?"
ANSWER = "Yes: she agreed until Wednesday and will call EDT if that changes."


def post(api: Api, handover_id: str, as_: str, **body: Any) -> Any:
    return api.post(f"/handovers/{handover_id}/messages", as_=as_, json_body=body)


def thread(api: Api, handover_id: str, as_: str = "edt_worker") -> Any:
    return api.get(f"/handovers/{handover_id}/messages", as_=as_)


def test_a_query_stays_open_until_an_answer_resolves_it(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    before = handover_row(app, handover_id)
    asked = post(api, handover_id, "social_worker", body=QUESTION)
    assert asked.status_code == 201, asked.get_json()
    assert asked.get_json()["kind"] == "query"
    assert asked.get_json()["open_queries"] == 1
    shown = api.get(f"/handovers/{handover_id}", as_="social_worker").get_json()
    assert (shown["open_queries"], shown["status"]) == (1, "delivered")
    after = handover_row(app, handover_id)  # a query resets nothing
    assert (after.ack_due_at, after.escalation_level) == (before.ack_due_at, 0)
    assert jobs(app, handover_id)["escalate:<id>:1"] == "pending"

    query_id = asked.get_json()["id"]
    answered = post(
        api, handover_id, "edt_worker", body=ANSWER, in_reply_to=query_id, resolves=True
    )
    assert answered.status_code == 201, answered.get_json()
    assert (answered.get_json()["kind"], answered.get_json()["open_queries"]) == ("reply", 0)

    body = thread(api, handover_id, "social_worker").get_json()
    assert body["open_queries"] == 0
    rows = [(m["kind"], m["body"], m["author"]["name"], m["open"]) for m in body["messages"]]
    assert rows == [
        ("query", QUESTION, "Sam Patel", False),
        ("reply", ANSWER, "Erin Walsh", False),
    ]
    assert body["messages"][1]["in_reply_to"] == query_id
    assert body["messages"][1]["resolves"] is True
    assert body["messages"][0]["resolved_at"] is not None
    kinds = {(kind, target) for kind, _, target in outbox(app, handover_id) if kind == "query"}
    assert kinds == {("query", "edt@tri-borough.example"), ("query", "east-fst@northvale.example")}


def test_replies_that_do_not_resolve_leave_the_query_open(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    query_id = post(api, handover_id, "social_worker", body=QUESTION).get_json()["id"]
    reply = post(
        api, handover_id, "edt_worker", body="Checking with the night worker.", in_reply_to=query_id
    )
    assert reply.get_json() | {"id": None} == {"id": None, "kind": "reply", "open_queries": 1}
    note = post(api, handover_id, "edt_manager", body="The police have the accounts now.")
    assert (note.get_json()["kind"], note.get_json()["open_queries"]) == ("note", 1)
    closed = post(
        api,
        handover_id,
        "social_worker",
        body="Found it, thanks.",
        in_reply_to=query_id,
        resolves=True,
    )
    assert closed.get_json()["open_queries"] == 0  # the asker may close their own query


def test_read_back_queries_join_the_thread_and_can_be_answered(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    api.post(
        f"/handovers/{handover_id}/acknowledge",
        as_="social_worker",
        json_body=read_back("a1", "a5"),
    )
    messages = thread(api, handover_id).get_json()["messages"]
    assert [(m["action"], m["open"]) for m in messages] == [("a1", True), ("a5", True)]
    post(
        api,
        handover_id,
        "edt_worker",
        body="The team manager.",
        in_reply_to=messages[0]["id"],
        resolves=True,
    )
    assert handover_row(app, handover_id).open_queries == 1
    assert handover_row(app, handover_id).status == "acknowledged"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": ""}, "body"),
        ({"body": "   "}, "body"),
        ({}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"body": "Answer.", "resolves": True}, "in_reply_to"),
        ({"body": "Answer.", "in_reply_to": "not-a-uuid"}, "in_reply_to"),
        ({"body": "Answer.", "in_reply_to": str(uuid.uuid4())}, "in_reply_to"),
        ({"body": "Answer.", "resolves": "yes"}, "resolves"),
        ({"body": "Answer.", "to": "someone"}, "to"),
    ],
)
def test_a_bad_message_is_refused_naming_the_field(
    app: Flask, api: Api, body: dict[str, Any], field: str
) -> None:
    handover_id = delivered(app, api)
    response = api.post(f"/handovers/{handover_id}/messages", as_="social_worker", json_body=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert message_rows(app, handover_id) == []


def test_only_an_open_query_can_be_resolved(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    query_id = post(api, handover_id, "social_worker", body=QUESTION).get_json()["id"]
    note_id = post(api, handover_id, "edt_worker", body="A note.").get_json()["id"]
    refused = post(
        api, handover_id, "social_worker", body="Done.", in_reply_to=note_id, resolves=True
    )
    assert refused.status_code == 422
    assert "resolves" in refused.get_json()["error"]["fields"]
    post(api, handover_id, "edt_worker", body=ANSWER, in_reply_to=query_id, resolves=True)
    again = post(api, handover_id, "edt_worker", body=ANSWER, in_reply_to=query_id, resolves=True)
    assert again.status_code == 422
    assert handover_row(app, handover_id).open_queries == 0


def test_a_reply_names_a_message_of_the_same_record(app: Flask, api: Api) -> None:
    first, second = delivered(app, api), delivered(app, api)
    query_id = post(api, first, "social_worker", body=QUESTION).get_json()["id"]
    response = post(api, second, "edt_worker", body=ANSWER, in_reply_to=query_id, resolves=True)
    assert response.status_code == 422
    assert handover_row(app, first).open_queries == 1


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [
        ("social_worker", 200, 201),
        ("team_manager", 200, 201),
        ("edt_worker", 200, 201),
        ("mash_worker", 200, 403),  # same LA: reads the record and thread, is not the holder
        ("police_officer", 403, 403),  # the thread is outside the police audience
        ("southmoor_worker", 404, 404),
        ("admin", 404, 404),
    ],
)
def test_who_may_read_and_write_the_thread(
    app: Flask, api: Api, who: str, read: int, write: int
) -> None:
    handover_id = delivered(app, api)
    headers = {"X-Access-Purpose": "Investigation WS/26/118734"}
    assert (
        api.get(f"/handovers/{handover_id}/messages", as_=who, headers=headers).status_code == read
    )
    assert post(api, handover_id, who, body=QUESTION).status_code == write


def test_the_thread_is_closed_to_drafts_and_withdrawn_handovers(app: Flask, api: Api) -> None:
    draft = create(api, record_for())
    assert post(api, draft, "edt_worker", body="A note.").status_code == 409
    handover_id = delivered(app, api)
    api.post(
        f"/handovers/{handover_id}/withdraw", as_="edt_manager", json_body={"reason": "Duplicate."}
    )
    assert post(api, handover_id, "edt_worker", body="A note.").status_code == 409


def test_a_retried_post_with_an_idempotency_key_adds_one_message(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    headers = {"Idempotency-Key": "query-7f3a"}
    path = f"/handovers/{handover_id}/messages"
    first = api.post(path, as_="social_worker", json_body={"body": QUESTION}, headers=headers)
    again = api.post(path, as_="social_worker", json_body={"body": QUESTION}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.get_json() == again.get_json()
    assert len(message_rows(app, handover_id)) == 1
    assert handover_row(app, handover_id).open_queries == 1
    other = api.post(path, as_="social_worker", json_body={"body": ANSWER}, headers=headers)
    assert other.status_code == 422


def test_messages_are_encrypted_bound_to_their_row_and_reads_audited(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    post(api, handover_id, "social_worker", body=QUESTION)
    post(api, handover_id, "edt_worker", body=ANSWER)
    rows = message_rows(app, handover_id)
    assert all(QUESTION.encode() not in r.body and ANSWER.encode() not in r.body for r in rows)
    assert thread(api, handover_id).status_code == 200
    with app.app_context(), transaction() as session:
        reads = session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "handover.messages", AuditEvent.object_id == handover_id)
        )
        assert reads == 1
        first, second = sorted(rows, key=lambda r: r.seq)
        session.execute(  # a ciphertext moved to another row must not decrypt
            sa.update(HandoverMessage)
            .where(HandoverMessage.id == second.id)
            .values(body=first.body)
        )
    response = thread(api, handover_id)
    assert response.status_code == 500
    assert QUESTION not in response.get_data(as_text=True)
