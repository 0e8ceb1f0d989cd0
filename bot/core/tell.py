"""Tell: the "what changed" story of a request, in plain words, for the team's thread."""

from __future__ import annotations

from collections.abc import Sequence

from .events import Event
from .models import RequestState
from .view import Entry, NameOf, clock_time, inert, sentence


def what_changed(request: RequestState, entries: Sequence[Entry], name_of: NameOf) -> str:
    """Trigger, what was shown, who decided what when, and what was written to the ERP."""
    record = request.packet.record
    shown = next((e for e in reversed(entries) if e.event == Event.PACKET_BUILT), None)
    lines = [f"What changed for {inert(record.reference)} ({inert(record.vendor)}, {record.amount:,.2f} {inert(record.currency)})"]
    for entry in entries:
        if entry.event == Event.PACKET_BUILT:
            continue
        text = sentence(entry, name_of)
        if text:
            lines.append(f"• {clock_time(entry.at)} — {text}")
    if shown is not None:
        packet = shown.body["packet"]
        facts = f"v{packet['version']}: {len(packet['record']['lines'])} lines"
        if packet.get("missing"):
            facts += f"; flagged missing: {', '.join(packet['missing'])}"
        lines.insert(1, f"• Shown to approvers: {facts}")
    return "\n".join(lines)
