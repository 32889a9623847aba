"""Stored monitoring reports: reads, the warnings their project's state owes them, and their recomputation.

Invariant: a report row's ``record_sha256`` is :func:`record_hash` of its record — the SHA-256 of the record's
canonical JSON under the scheme the record names (``hash_scheme``: ``rfc8785``; none: ``shanhai-json/1``, every
record before revision 0021), the scheme the row's ``hash_scheme`` column names — and :func:`recompute` of the
record reproduces it byte for byte, offline, under that same scheme, from the packaged methodologies and
parameter sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.methods.base import Methodology
from carbon.methods.registry import default_registry
from carbon.models import MonitoringReport, Project, ProjectStatus
from carbon.parameters.loader import available_parameter_sets, load_parameter_set
from carbon.projects import get_project
from core.canonical import LEGACY_SCHEME, SCHEMES, scheme_hash
from core.errors import InvalidInput, NotFound

REGISTRY = default_registry()


def validated(methodology: Methodology[Any], document: Mapping[str, Any]) -> BaseModel:
    """Return the methodology's input model of ``document``, or refuse it with every problem."""
    try:
        return methodology.input_model.model_validate(document)
    except ValidationError as error:
        problems = [
            {
                "pointer": "/inputs/" + "/".join(str(part) for part in item["loc"]),
                "reason": item["msg"],
                "kind": item["type"],
            }
            for item in error.errors()
        ]
        raise InvalidInput(f"the inputs do not match {methodology.id} {methodology.version}", problems) from None


#: Stable code of the warning that a report's project is not registered (issuance needs a registered project).
PROJECT_NOT_REGISTERED = "project_not_registered"


def lifecycle_warnings(project: Project) -> list[dict[str, str]]:
    """Return the warnings a report owes its reader because of its project's state (empty when registered).

    A report may be filed and verified while its project is still in draft, submitted or validated, but
    issuance needs a registered project (``carbon.workflow``); saying so at filing saves a surprise later.
    The warning is derived from the project's current state, not stored: it goes once the project is registered.
    """
    if project.status is ProjectStatus.REGISTERED:
        return []
    message = (
        f"project {project.code} is {project.status.value}: this report cannot be issued until the project is "
        "registered (submit it, have it validated, then registered by the registry)"
    )
    return [{"code": PROJECT_NOT_REGISTERED, "message": message}]


def get_report(session: Session, report_id: int) -> MonitoringReport:
    """Return a report or raise :class:`NotFound`."""
    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"monitoring report {report_id} does not exist")
    return report


def list_reports(session: Session, project_id: int) -> list[MonitoringReport]:
    """Return the reports of a project (which must exist) in filing order."""
    get_project(session, project_id)
    return list(
        session.scalars(
            select(MonitoringReport).where(MonitoringReport.project_id == project_id).order_by(MonitoringReport.id)
        )
    )


@dataclass(frozen=True, slots=True)
class Recomputation:
    """What recomputing a record found."""

    recomputed_sha256: str
    record_sha256: str
    parameter_set_sha256_matches: bool
    hash_scheme: str = LEGACY_SCHEME

    @property
    def matches(self) -> bool:
        """Return whether the recomputed record is byte-identical to the given one."""
        return self.recomputed_sha256 == self.record_sha256


def recompute(record: Mapping[str, Any] | str | bytes) -> str:
    """Recompute a stored result record from its own inputs and return the SHA-256 of the new record.

    It matches the stored hash exactly when the inputs, the parameter set and the code give the same
    bytes. Runs offline: it needs the packaged methodologies and parameter sets only.

    Raises:
        NotFound: Unknown methodology or parameter set.
        InvalidInput: The record is not a result record.
    """
    loaded = json.loads(record) if isinstance(record, str | bytes) else record
    if not isinstance(loaded, Mapping):
        raise InvalidInput("not a methodology result record (a JSON object)")
    return check_record(loaded).recomputed_sha256


def record_scheme_of(record: Mapping[str, Any]) -> str:
    """Return the canonicalization scheme ``record`` names (none: ``shanhai-json/1``).

    Raises:
        InvalidInput: The record names an unknown scheme.
    """
    scheme = record.get("hash_scheme", LEGACY_SCHEME)
    if scheme not in SCHEMES:
        raise InvalidInput(f"the record names an unknown hash scheme {scheme!r}", [{"pointer": "/hash_scheme"}])
    return str(scheme)


def record_hash(record: Mapping[str, Any]) -> str:
    """Return the SHA-256 of ``record``'s canonical JSON under the scheme it names (no recomputation).

    Raises:
        InvalidInput: The record names an unknown scheme, or has no form in it.
    """
    scheme = record_scheme_of(record)
    try:
        return scheme_hash(dict(record), scheme)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"the record has no {scheme} canonical form: {error}") from None


def check_record(record: Mapping[str, Any]) -> Recomputation:
    """Recompute ``record`` under the scheme it names and compare it with itself (see :func:`recompute`)."""
    if not isinstance(record, Mapping):
        raise InvalidInput("not a methodology result record (a JSON object)")
    scheme = record_scheme_of(record)
    try:
        methodology = REGISTRY.get(str(record["methodology"]["id"]), str(record["methodology"]["version"]))
        ref = record["parameter_set"]
        set_id, version = str(ref["id"]), str(ref["version"])
        inputs = record["inputs"]
    except (KeyError, TypeError):
        raise InvalidInput("not a methodology result record (methodology, parameter_set, inputs)") from None
    if (set_id, version) not in available_parameter_sets():
        raise NotFound(f"parameter set {set_id}@{version} is not packaged here")
    parameters = load_parameter_set(set_id, version)
    result = methodology.compute(validated(methodology, inputs), parameters).under(scheme, parameters)
    matches_set = parameters.content_hash(scheme) == ref.get("sha256")
    return Recomputation(result.sha256, record_hash(record), matches_set, scheme)
