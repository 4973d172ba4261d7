"""Email notifications: plain text, reference, team, status and link only, sent over SMTP.

The Message-ID is ``<outbox-id@handover>`` on every retry, so a mail system or a reader can tell
a retried message from a new one.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any

# Fold only lines over SMTP's hard limit: the standard 78 folds the short subjects oddly.
POLICY = default_policy.clone(max_line_length=998)
FOOTER = (
    "This message carries no record content. Sign in to the handover service to read it.\n"
    "Sent automatically: replies are not read.\n"
)


@dataclass(frozen=True, repr=False)
class MailSettings:
    """Where and how to send mail; the password never appears in a repr."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailSettings:
        """Read the MAIL_* settings."""
        return cls(
            host=str(config["MAIL_HOST"]),
            port=int(config["MAIL_PORT"]),
            sender=str(config["MAIL_FROM"]),
            starttls=bool(config.get("MAIL_STARTTLS", False)),
            username=str(config.get("MAIL_USERNAME") or ""),
            password=str(config.get("MAIL_PASSWORD") or ""),
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 10)),
        )

    def __repr__(self) -> str:
        return f"MailSettings(host={self.host!r}, port={self.port})"


def message_id(outbox_id: str) -> str:
    """The stable Message-ID of one outbox row."""
    return f"<{outbox_id}@handover>"


def subject(payload: Mapping[str, Any]) -> str:
    """A subject line naming the reference and team, never content."""
    kind, ref, team = payload.get("type"), payload.get("reference"), payload.get("team")
    subjects = {
        "delivered": f"Handover {ref} delivered to {team}",
        "escalated": f"Handover {ref} not acknowledged: escalated ({team})",
        "returned": f"Handover {ref} returned by {team}",
        "rerouted": f"Handover {ref} rerouted to {team}",
        "withdrawn": f"Handover {ref} withdrawn ({team})",
        "acknowledged": f"Handover {ref} acknowledged by {team}",
        "query": f"Handover {ref}: new query message ({team})",
        "digest": (
            f"Handover start-of-day digest for {team}, {payload.get('day')}: "
            f"{payload.get('arrived_count', 0)} arrived, {payload.get('overdue_count', 0)} overdue"
        ),
        "alert": f"Handover service alert: {_alert_summary(payload)}",
    }
    return subjects.get(str(kind), f"Handover {ref}: {kind}")


def _alert_summary(payload: Mapping[str, Any]) -> str:
    about = payload.get("notification")
    if not about:
        what = f"handover {payload['reference']}" if payload.get("reference") else "a team"
        return f"{what} needs attention ({payload.get('team')})"
    if payload.get("reason") == "unreachable":
        return f"no address for {about.get('kind')} notification to {payload.get('team')}"
    return f"{about.get('kind')} notification to {payload.get('team')} failed"


def text(payload: Mapping[str, Any]) -> str:
    """The plain-text body: reference, team, status and link, or a digest's references."""
    kind = payload.get("type")
    if kind == "digest":
        return _digest_text(payload) + "\n" + FOOTER
    lines = []
    if kind == "alert":
        lines += _alert_lines(payload)
    lines += [
        f"Reference: {payload.get('reference') or '-'}",
        f"Team: {payload.get('team') or '-'}",
        f"Status: {payload.get('status') or '-'}",
        f"Open: {payload.get('link') or '-'}",
    ]
    return "\n".join(lines) + "\n\n" + FOOTER


def _alert_lines(payload: Mapping[str, Any]) -> list[str]:
    about = payload.get("notification")
    if not about:
        return ["This handover needs a person's attention: sign in to see its history.", ""]
    if payload.get("reason") == "unreachable":
        return [
            f"A {about.get('kind')} notification had nowhere to go: the team has no email",
            "address or webhook, or the audience has no one with an address.",
            "",
        ]
    return [
        "A notification could not be delivered and will not be retried.",
        "",
        f"Notification: {about.get('id')} ({about.get('kind')}, {about.get('channel') or '-'})",
        f"Attempts: {about.get('attempts', 0)}",
        f"Last error: {about.get('error') or '-'}",
        "",
    ]


def _digest_text(payload: Mapping[str, Any]) -> str:
    parts = [f"Start-of-day digest for {payload.get('team')}, {payload.get('day')}.", ""]
    for key, title in (("arrived", "Arrived overnight"), ("overdue", "Overdue")):
        items = payload.get(key) or []
        count = payload.get(f"{key}_count", len(items))
        parts.append(f"{title}: {count}")
        parts += [f"  {item['reference']}  {item['link']}" for item in items]
        if count > len(items):
            parts.append(f"  ... and {count - len(items)} more in the inbox")
        parts.append("")
    parts.append(f"Team inbox: {payload.get('link')}")
    return "\n".join(parts) + "\n"


def build(
    *, outbox_id: str, sender: str, to: str, payload: Mapping[str, Any], created_at: datetime
) -> EmailMessage:
    """Build the message for one outbox row; identical on every retry."""
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id(outbox_id)
    message["Date"] = format_datetime(created_at)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject(payload)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text(payload))
    return message


def send(settings: MailSettings, message: EmailMessage) -> None:
    """Hand one message to the SMTP server; raises OSError or smtplib.SMTPException on failure."""
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)
