"""The incident lifecycle: statuses, allowed transitions, closing reasons, CAP mapping."""

from __future__ import annotations

STATUSES = ("reported", "verified", "dispatched", "en_route", "on_scene", "resolved", "closed")
OPEN_STATUSES = frozenset(STATUSES[:-1])
PUBLIC_STATUSES = frozenset({"verified", "dispatched", "en_route", "on_scene", "resolved"})
CLOSE_REASONS = ("resolved", "duplicate", "false_alarm", "not_responsible", "unable")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("verified", "closed"),
    "verified": ("dispatched", "resolved", "closed"),
    "dispatched": ("en_route", "verified", "closed"),
    "en_route": ("on_scene", "dispatched", "closed"),
    "on_scene": ("resolved", "closed"),
    "resolved": ("closed", "on_scene"),
    "closed": (),
}


def allowed(current: str) -> tuple[str, ...]:
    return TRANSITIONS.get(current, ())


def can_transition(current: str, target: str) -> bool:
    return target in allowed(current)


# CAP 1.2: severity 1–5 → (severity, urgency)
CAP_SEVERITY = {1: "Minor", 2: "Minor", 3: "Moderate", 4: "Severe", 5: "Extreme"}
CAP_URGENCY = {1: "Future", 2: "Expected", 3: "Expected", 4: "Immediate", 5: "Immediate"}


def cap_certainty(status: str) -> str:
    return "Possible" if status == "reported" else "Observed"
