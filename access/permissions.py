"""Who may do what: the one table of access rules, keyed by action — API route names and page names.

Every route of the API and every page (an action named ``page_…``, served by ``web``) has exactly one entry.
``PUBLIC`` routes need no credentials; every other entry is the set of roles (organisation kinds) allowed. A
route missing from the table is refused at start-up (:func:`check_rules`) and, should one slip through, denied
at run time (fail closed). Finer rules — "only the proponent's own organisation", "never your own work" — are
the services'.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from carbon.ledger import HOLDER_KINDS
from core.auth import OrgKind

PUBLIC: Final = "public"
Rule = frozenset[OrgKind] | Literal["public"]

ALL_ROLES: Final = frozenset(OrgKind)
PROPONENTS: Final = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER})
AUDIT_READERS: Final = frozenset({OrgKind.AUDITOR, OrgKind.REGISTRY})
HOLDERS: Final = HOLDER_KINDS  # who may hold (and so receive) tonnes: the registry's rule, ADR 022
#: GEP accounting: the ecology bureau runs it; auditors and the registry read runs and results.
GEP_RUNNERS: Final = frozenset({OrgKind.ECOLOGY_BUREAU})
GEP_READERS: Final = GEP_RUNNERS | AUDIT_READERS
TRADERS: Final = PROPONENTS | {OrgKind.ENTERPRISE}
#: Evidence: proponents attach to their own projects and reports, verifiers their verification reports; the
#: project's organisation, verifiers, the registry and auditors read it (forest-right certificates name people).
EVIDENCE_WRITERS: Final = PROPONENTS | {OrgKind.VERIFIER}
EVIDENCE_READERS: Final = PROPONENTS | {OrgKind.VERIFIER, OrgKind.REGISTRY, OrgKind.AUDITOR}
#: Reversal monitoring: bureaus and the registry bring evidence in and start runs; auditors read it all.
EVIDENCE_BRINGERS: Final = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.ECOLOGY_BUREAU, OrgKind.REGISTRY})
WATCHERS: Final = EVIDENCE_BRINGERS | {OrgKind.AUDITOR}
#: Eco-compensation (ADR 039): ecology bureaus make agreements, record readings and answer for their regions;
#: auditors and the registry read them.
ECO_PARTIES: Final = frozenset({OrgKind.ECOLOGY_BUREAU})
ECO_READERS: Final = ECO_PARTIES | AUDIT_READERS
#: Ecological-product rights: registered and re-valued by ecology bureaus, owned (and pledged) by proponents and
#: enterprises, lent against by banks.
RIGHT_HOLDERS: Final = PROPONENTS | {OrgKind.ENTERPRISE}
BANKS: Final = frozenset({OrgKind.BANK})
RIGHT_READERS: Final = ECO_READERS | RIGHT_HOLDERS | BANKS
OPERATOR: Final = frozenset({OrgKind.OPERATOR})
#: The review desk: verifiers verify and validate, the registry registers and issues (issue 22).
REVIEWERS: Final = frozenset({OrgKind.VERIFIER, OrgKind.REGISTRY})
#: Who manages users and lifts login lock-outs (the API's unlock rule, and the pages of issue 25).
USER_ADMINS: Final = frozenset({OrgKind.REGISTRY, OrgKind.OPERATOR})
#: Who may scrape ``/metrics`` when it is not public (``SHANHAI_METRICS_PUBLIC``, ADR 029).
METRICS_READERS: Final = frozenset({OrgKind.OPERATOR, OrgKind.AUDITOR})
#: Routes that are public only when a setting says so; their table entry is the rule otherwise.
METRICS_ROUTE: Final = "read_metrics"

RULES: Final[dict[str, Rule]] = {
    # system
    "health": PUBLIC,
    METRICS_ROUTE: METRICS_READERS,  # public when SHANHAI_METRICS_PUBLIC (default: development only)
    # auth
    "login_for_token": PUBLIC,
    "refresh_access_token": PUBLIC,
    "unlock_login": frozenset({OrgKind.REGISTRY, OrgKind.OPERATOR}),
    "read_me": ALL_ROLES,
    "create_api_key": frozenset({OrgKind.ENTERPRISE}),
    "list_organisations": ALL_ROLES,
    # projects and plots
    "create_project": PROPONENTS,
    "list_projects": ALL_ROLES,
    "read_project": ALL_ROLES,
    "upload_plots": PROPONENTS,
    "list_project_plots": ALL_ROLES,
    "read_plot": ALL_ROLES,
    "remeasure_plot": PROPONENTS | {OrgKind.REGISTRY},
    "read_task": PROPONENTS | {OrgKind.REGISTRY},
    "upload_plot_file": PROPONENTS,
    "read_plot_import": PROPONENTS | {OrgKind.REGISTRY, OrgKind.AUDITOR},
    "read_plot_overlaps": ALL_ROLES,
    "download_project_plots": ALL_ROLES,
    # a project's tonnes beside its regions' GEP (issue 26): GEP readers any project's, proponents their own
    "read_project_gep": PROPONENTS | GEP_READERS,
    # evidence attachments (ADR 037): the services add "own organisation's project", "verifier's report only"
    "upload_project_attachment": EVIDENCE_WRITERS,
    "list_project_attachments": EVIDENCE_READERS,
    "upload_report_attachment": EVIDENCE_WRITERS,
    "list_report_attachments": EVIDENCE_READERS,
    "read_attachment": EVIDENCE_READERS,
    "download_attachment": EVIDENCE_READERS,
    "register_raster_layer": frozenset({OrgKind.OPERATOR, OrgKind.REGISTRY}),
    "list_raster_layers": ALL_ROLES,
    "read_plot_zonal_statistics": ALL_ROLES,
    # lifecycles
    "submit_project": PROPONENTS,
    "validate_project": frozenset({OrgKind.VERIFIER}),
    "register_project": frozenset({OrgKind.REGISTRY}),
    "reject_project": frozenset({OrgKind.VERIFIER, OrgKind.REGISTRY}),
    "read_project_workflow": ALL_ROLES,
    "verify_monitoring_report": frozenset({OrgKind.VERIFIER}),
    "reject_monitoring_report": frozenset({OrgKind.VERIFIER}),
    "issue_monitoring_report": frozenset({OrgKind.REGISTRY}),
    "read_report_workflow": ALL_ROLES,
    # registry
    "read_holdings": ALL_ROLES,
    "create_transfer": HOLDERS,
    "list_pending_transfers": HOLDERS,
    "accept_transfer": HOLDERS,
    "reject_transfer": HOLDERS,
    "expire_pending_transfers": frozenset({OrgKind.REGISTRY}),
    "create_pledge": PROPONENTS | {OrgKind.ENTERPRISE},
    "release_pledge": frozenset({OrgKind.BANK}),
    "enforce_pledge": frozenset({OrgKind.BANK}),
    "create_retirement": HOLDERS,
    "read_certificate": ALL_ROLES,
    # public registry
    "verify_retirement": PUBLIC,
    "read_retirement_witnessing": PUBLIC,
    "public_certificate": PUBLIC,
    "list_batches": PUBLIC,
    "read_buffer": PUBLIC,
    "list_public_projects": PUBLIC,
    "export_batches_csv": PUBLIC,
    "list_public_retirements": PUBLIC,
    "export_retirements_csv": PUBLIC,
    "create_reversal": frozenset({OrgKind.REGISTRY}),
    # methodologies and monitoring reports
    "list_methodologies": ALL_ROLES,
    "read_methodology": ALL_ROLES,
    "preview_monitoring_report": PROPONENTS,
    "file_monitoring_report": PROPONENTS,
    "list_monitoring_reports": ALL_ROLES,
    "read_monitoring_report": ALL_ROLES,
    "read_monitoring_report_trace": ALL_ROLES,
    "read_monitoring_report_sheet": ALL_ROLES,
    # GEP accounting
    "upload_gep_region_layer": GEP_RUNNERS,
    "list_gep_region_layers": GEP_READERS,
    "create_gep_run": GEP_RUNNERS,
    "list_gep_runs": GEP_READERS,
    "read_gep_run": GEP_READERS,
    "read_gep_run_table": GEP_READERS,
    "read_gep_run_workbook": GEP_READERS,
    "read_gep_run_raster": GEP_READERS,
    "compare_gep_runs": GEP_READERS,
    # reversals found from the land (ADR 038)
    "import_change_patch_file": EVIDENCE_BRINGERS,
    "list_change_patch_files": WATCHERS,
    "list_change_patches": WATCHERS,
    "register_land_composite": EVIDENCE_BRINGERS,
    "list_land_composites": WATCHERS,
    "read_loss_thresholds": ALL_ROLES,
    "set_loss_thresholds": frozenset({OrgKind.REGISTRY}),
    "create_watch_run": EVIDENCE_BRINGERS,
    "list_watch_runs": WATCHERS,
    "read_watch_run": WATCHERS,
    "list_loss_events": WATCHERS | PROPONENTS,
    "read_loss_event": WATCHERS | PROPONENTS,
    "read_loss_event_map": WATCHERS | PROPONENTS,
    "confirm_loss_event": frozenset({OrgKind.REGISTRY}),
    "reject_loss_event": frozenset({OrgKind.REGISTRY}),
    # the in-app inbox of the caller's organisation
    "list_inbox": ALL_ROLES,
    "read_inbox_message": ALL_ROLES,
    # eco-compensation between regions (ADR 039); finer rules (a party's own organisation) in the services
    "create_eco_agreement": ECO_PARTIES,
    "list_eco_agreements": ECO_READERS,
    "read_eco_agreement": ECO_READERS,
    "record_eco_reading": ECO_PARTIES,
    "list_eco_readings": ECO_READERS,
    "compute_eco_statement": ECO_PARTIES,
    "list_eco_statements": ECO_READERS,
    "read_eco_statement": ECO_READERS,
    "confirm_eco_statement": ECO_PARTIES,
    "dispute_eco_statement": ECO_PARTIES,
    "list_eco_obligations": ECO_READERS,
    "record_eco_payment": ECO_PARTIES,
    "export_eco_agreement_csv": ECO_READERS,
    "export_eco_agreement_xlsx": ECO_READERS,
    "export_eco_region_csv": ECO_READERS,
    "export_eco_region_xlsx": ECO_READERS,
    # ecological-product rights and their pledges (ADR 039); the owner and the pledgee bank are the services' rule
    "register_eco_right": ECO_PARTIES,
    "list_eco_rights": RIGHT_READERS,
    "read_eco_right": RIGHT_READERS,
    "revalue_eco_right": ECO_PARTIES,
    "set_eco_bank_policy": BANKS,
    "list_eco_bank_policies": RIGHT_READERS,
    "request_eco_pledge": RIGHT_HOLDERS,
    "list_eco_pledges": RIGHT_READERS,
    "accept_eco_pledge": BANKS,
    "decline_eco_pledge": BANKS,
    "release_eco_pledge": BANKS,
    "enforce_eco_pledge": BANKS,
    # trading
    "create_instrument": OPERATOR,
    "list_instruments": ALL_ROLES,
    "close_instrument_day": OPERATOR,
    "record_deposit": OPERATOR,
    "record_withdrawal": OPERATOR,
    "read_cash": TRADERS | OPERATOR,
    "place_order": TRADERS,
    "list_orders": TRADERS,
    "read_order": TRADERS,
    "cancel_order": TRADERS,
    "amend_order": TRADERS,
    "list_fills": TRADERS,
    # market data: public and anonymous, as exchanges publish quotes and daily reports (ADR 014)
    "read_market_book": PUBLIC,
    "list_market_trades": PUBLIC,
    "list_market_bars": PUBLIC,
    "stream_market": PUBLIC,
    # reports: aggregates without parties' names, for every role of the cooperation
    "read_flows_report": ALL_ROLES,
    "export_flows_csv": ALL_ROLES,
    "export_flows_xlsx": ALL_ROLES,
    # block trades and one-way auctions (issue 8, ADR 013); finer rules (named counterparty, own bid) in services
    "propose_block_trade": TRADERS,
    "list_block_trades": TRADERS | OPERATOR,
    "read_block_trade": TRADERS | OPERATOR,
    "confirm_block_trade": TRADERS,
    "reject_block_trade": TRADERS,
    "withdraw_block_trade": TRADERS,
    "expire_block_trades": OPERATOR,
    "announce_auction": TRADERS,
    "place_auction_bid": TRADERS,
    "list_auction_bids": TRADERS | OPERATOR,
    "withdraw_auction_bid": TRADERS,
    "close_auction": OPERATOR,
    "list_public_auctions": PUBLIC,
    "read_public_auction": PUBLIC,
    # audit
    "list_audit_entries": AUDIT_READERS,
    "verify_audit_log": AUDIT_READERS,
    # Public so that anyone can verify the log without trusting the operator; hashes only, no entries.
    "read_audit_tree_head": PUBLIC,
    "read_audit_public_key": PUBLIC,
    "read_audit_checkpoint": PUBLIC,
    "read_audit_witnessed_checkpoint": PUBLIC,
    "read_audit_witness_policy": PUBLIC,
    # administrative boundaries: the map reference layer and its review number (审图号)
    "read_public_regions": PUBLIC,
    "read_public_region_boundaries": PUBLIC,
    "read_audit_inclusion_proof": PUBLIC,
    "read_audit_consistency_proof": PUBLIC,
    # web pages (issue 20): the public registry and the certificate check for everyone, the rest after login
    "page_home": PUBLIC,
    "page_registry_projects": PUBLIC,
    "page_registry_project": PUBLIC,
    "page_registry_retirements": PUBLIC,
    "page_registry_retirements_csv": PUBLIC,
    "page_verify": PUBLIC,
    "page_verify_certificate": PUBLIC,
    "page_login_form": PUBLIC,
    "page_login": PUBLIC,
    "page_logout": PUBLIC,
    "page_set_language": PUBLIC,
    "page_report_sheet": ALL_ROLES,
    # the proponent's desk (issue 21): own projects, plots on the map, uploads, reports; services check the owner
    "page_projects": PROPONENTS,
    "page_project": PROPONENTS,
    "page_project_tiles": PROPONENTS,
    "page_plot_card": PROPONENTS,
    "page_project_submit": PROPONENTS,
    "page_upload_form": PROPONENTS,
    "page_upload_columns": PROPONENTS,
    "page_upload": PROPONENTS,
    "page_import": PROPONENTS,
    "page_report_new": PROPONENTS,
    "page_report_template": PROPONENTS,
    "page_report_preview": PROPONENTS,
    "page_report_file": PROPONENTS,
    "page_project_evidence": PROPONENTS,
    "page_attach_evidence": PROPONENTS,
    # whoever reads the project's evidence (its organisation, verifiers, the registry, auditors: the service checks)
    "page_download_evidence": PROPONENTS | {OrgKind.VERIFIER, OrgKind.REGISTRY, OrgKind.AUDITOR},
    # the review desk (issue 22): verifiers and the registry; the workflow's service checks who decides what
    "page_review": REVIEWERS,
    "page_review_report": REVIEWERS,
    "page_review_tiles": REVIEWERS,
    "page_review_plot_card": REVIEWERS,
    "page_review_report_step": REVIEWERS,
    "page_review_project_step": REVIEWERS,
    # reversal proposals on the desk: seen as the API's loss events are (registry, auditors, the proponent's
    # organisation — ``check_visible``); decided by the registry alone (``confirm_event`` / ``reject_event``)
    "page_review_reversal": REVIEWERS | AUDIT_READERS | PROPONENTS,
    "page_review_reversal_map": REVIEWERS | AUDIT_READERS | PROPONENTS,
    "page_review_reversal_tiles": REVIEWERS | AUDIT_READERS | PROPONENTS,
    "page_review_reversal_plot_card": REVIEWERS | AUDIT_READERS | PROPONENTS,
    "page_review_reversal_decide": REVIEWERS | AUDIT_READERS | PROPONENTS,
    # holdings (issue 22): as the API's holdings, transfers, pledges and retirements
    "page_holdings": HOLDERS,
    "page_holdings_transfer": HOLDERS,
    "page_holdings_decide": HOLDERS,
    "page_holdings_pledge": PROPONENTS | {OrgKind.ENTERPRISE},
    "page_holdings_pledge_decide": BANKS,
    "page_holdings_retire": HOLDERS,
    # the auditor's desk and administration (issue 25)
    "page_audit": AUDIT_READERS,
    "page_audit_tree_head": AUDIT_READERS,
    "page_admin_users": USER_ADMINS,
    "page_admin_create_user": USER_ADMINS,
    "page_admin_create_organisation": USER_ADMINS,
    "page_admin_deactivate_user": USER_ADMINS,
    "page_admin_reset_password": USER_ADMINS,
    "page_admin_unlock": USER_ADMINS,
    "page_flows": ALL_ROLES,  # as read_flows_report
    "page_flows_csv": ALL_ROLES,
    "page_flows_xlsx": ALL_ROLES,
    "page_operator": OPERATOR,
    "page_operator_deposit": OPERATOR,
    "page_operator_list_instrument": OPERATOR,  # as create_instrument
    "page_operator_announce_auction": OPERATOR,  # announce_auction on a seller's application
    "page_operator_close_auction": OPERATOR,  # as close_auction
    "page_api_keys": frozenset({OrgKind.ENTERPRISE}),
    "page_create_api_key": frozenset({OrgKind.ENTERPRISE}),
    "page_revoke_api_key": frozenset({OrgKind.ENTERPRISE}),
    # the market screen (issue 23, ADR 042): market data public, the ticket and the trader's orders TRADERS'
    "page_market": PUBLIC,
    "page_market_instrument": PUBLIC,
    "page_market_mine": TRADERS,
    "page_market_order": TRADERS,
    "page_market_cancel": TRADERS,
    "page_market_amend": TRADERS,
    "page_auctions": PUBLIC,
    "page_auction": PUBLIC,
    "page_auction_bid": TRADERS,
    "page_block_trades": TRADERS,
    "page_block_propose": TRADERS,
    "page_block_answer": TRADERS,
    # the GEP explorer (issue 24): the GEP API's rules — the ecology bureau runs, auditors and the registry read
    "page_gep_runs": GEP_READERS,
    "page_gep_run_new": GEP_RUNNERS,
    "page_gep_run_create": GEP_RUNNERS,
    "page_gep_run": GEP_READERS,
    "page_gep_run_progress": GEP_READERS,
    "page_gep_run_regions": GEP_READERS,
    "page_gep_run_tile": GEP_READERS,
    "page_gep_compare_tile": GEP_READERS,
    "page_gep_run_value": GEP_READERS,
    "page_gep_run_table": GEP_READERS,
    "page_gep_run_workbook": GEP_READERS,
    "page_gep_run_raster": GEP_READERS,
    "page_gep_compare_csv": GEP_READERS,
}

#: Actions whose name starts so are pages: they know a person by the session cookie, never by a token.
PAGE_PREFIX: Final = "page_"


def is_page(action: str) -> bool:
    """Return whether ``action`` names a page (served by ``web``, authenticated by the session cookie)."""
    return action.startswith(PAGE_PREFIX)


def allows(action: str, role: OrgKind | None) -> bool:
    """Return whether ``role`` (``None``: anonymous) may do ``action``; an action without a rule allows nobody."""
    rule = RULES.get(action)
    return rule == PUBLIC or (rule is not None and role is not None and role in rule)


class MissingRule(RuntimeError):
    """A route has no access rule; the application refuses to start."""


def rule_for(route_name: str, *, metrics_public: bool = False) -> Rule | None:
    """Return the rule of a route, or ``None`` when it has none (``/metrics`` is public when ``metrics_public``)."""
    if route_name == METRICS_ROUTE and metrics_public:
        return PUBLIC
    return RULES.get(route_name)


def check_rules(route_names: Iterable[str]) -> None:
    """Raise :class:`MissingRule` naming every route without a rule."""
    missing = sorted(name for name in route_names if name not in RULES)
    if missing:
        raise MissingRule(f"routes without an access rule in access/permissions.py: {', '.join(missing)}")
