"""Fire response: the incident engine (pure, clock-driven) and the alarm-lane recorder."""

from gateway.fire.actions import Action, Audit, AuditRecord, Notify, Publish, Trouble
from gateway.fire.engine import FireEngine, RestoreSummary
from gateway.fire.incident import ACTIONS, Incident, IncidentError, State, parse_action
from gateway.fire.linkage import card_hash
from gateway.fire.recorder import AlarmRecorder
from gateway.fire.texts import render, template_problem

__all__ = [
    "ACTIONS",
    "Action",
    "AlarmRecorder",
    "Audit",
    "AuditRecord",
    "FireEngine",
    "Incident",
    "IncidentError",
    "Notify",
    "Publish",
    "RestoreSummary",
    "State",
    "Trouble",
    "card_hash",
    "parse_action",
    "render",
    "template_problem",
]
