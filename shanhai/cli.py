"""The ``shanhai`` command line: database, demo data, server, worker and audit verification.

::

    shanhai db upgrade            migrate the configured database to the latest schema
    shanhai seed                  load the demo organisations, users, projects, plots and issued tonnes
    shanhai run [--host --port]   upgrade, seed and serve (what ``make run`` does)
    shanhai serve [--host --port] serve the API
    shanhai user set-password NAME   set a password (standard input) under the password policy
    shanhai worker                run a Celery worker (needs SHANHAI_BROKER_URL)
    shanhai audit verify          recompute the audit hash chain; exit 1 on the first broken entry
        [--tree-head FILE]        ... and check the log still extends a signed tree head kept earlier
        [--export DIR]            verify an export instead, without the database (chain, root, signature)
        [--public-key FILE]       the log's Ed25519 public key (PEM); default: the configured signing key's,
                                  or the export's public-key.pem
    shanhai audit publish-head [--out FILE]
                                  sign the current tree head; print it (or write FILE) for publishing
    shanhai audit export --out DIR
                                  write entries.jsonl, tree-head.json and public-key.pem to DIR, and the
                                  witnessing files: checkpoint.txt (the latest witnessed checkpoint),
                                  log.vkey and witnesses.txt (ADR 033)
    shanhai audit verify --checkpoint FILE [--witnesses FILE] [--log-vkey VKEY] [--export DIR]
                                  check a checkpoint's log signature and k-of-n cosignatures offline, and
                                  that the log (or the export) holds exactly its tree
    shanhai audit vkey            print the log's checkpoint origin and note verifier key
    shanhai audit witness         submit the newest checkpoint to the witnesses now; exit 1 unless witnessed
    shanhai witness serve --name NAME --state-dir DIR [--key-file PEM] --log VKEY [--log VKEY…] [--host --port]
                                  run a C2SP tlog-witness (POST /add-checkpoint) for the logs of the vkeys
    shanhai witness vkey --name NAME --state-dir DIR [--key-file PEM]
                                  print the witness's cosignature/v1 verifier key (creating its key once)
    shanhai audit verify-certificate FILE.pdf [--public-key FILE]
                                  check a retirement certificate offline: its embedded facts, the kept tree
                                  head's signature and the audit entry's inclusion proof; exit 1 if it fails
    shanhai regions import FILE --source TEXT --licence TEXT [--datum cgcs2000|wgs84|gcj02]
        [--code-field code] [--as-of TEXT]
                                  replace the administrative boundaries (GeoJSON, GeoPackage or zipped
                                  Shapefile keyed by GB/T 2260 code) atomically, with an audit entry
    shanhai carbon compute FILE   recompute an exported report trace (or bare record) offline, under the hash
                                  scheme the record names (rfc8785, or shanhai-json/1); exit 1 on mismatch
    shanhai carbon methodologies  list the methodologies and their parameter sets
    shanhai gep run CONFIG [--out DIR] [--xlsx]
                                  run a GEP accounting offline from a YAML/JSON config naming files;
                                  write the SEEA-EA tables (CSV), value rasters and run.json to DIR
    shanhai eco recompute [--record FILE]
                                  rebuild every eco-compensation statement from the database (its agreement's
                                  terms, the same run lines and readings) and compare each record's SHA-256
                                  byte for byte; or rebuild one exported record offline; exit 1 on a mismatch
    shanhai eco demo              build the synthetic eco-compensation and collateral demo (ADR 039) on top of
                                  ``shanhai seed``'s demo data
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from carbon.ledger import ledger_violations
from carbon.ledger.certificates import check_certificate, facts_of_pdf
from core.audit import iter_entries, verify_chain
from core.audit_export import export_log, read_tree_head, verify_export, write_tree_head
from core.audit_tree import AuditTree, check_kept_head, load_signing_key, publish_tree_head
from core.checkpoint import WitnessKey, check_witnessed, log_vkey, parse_vkey
from core.clock import SystemClock
from core.db import make_engine, make_session_factory, session_scope
from core.errors import AuditChainBroken, AuditLogInconsistent
from core.logs import configure_logging
from core.merkle import MerkleTree
from core.metrics import clean_multiprocess_dir, configure_multiprocess, process_exited, start_metrics_server
from core.migrate import upgrade
from core.settings import Settings, get_settings
from core.tree_head import SignedTreeHead, load_public_key_pem
from core.witnessing import (
    CHECKPOINT_FILE,
    WITNESSES_FILE,
    UrllibTransport,
    WitnessPolicy,
    publish_witness_files,
    read_witness_files,
    witness_round,
)


def _prepare(settings: Settings) -> None:
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    """Migrate the database to the latest revision."""
    _prepare(settings)
    upgrade(settings.resolved_database_url)
    print(f"database at {settings.resolved_database_url} is at the latest revision")
    return 0


def cmd_regions_import(settings: Settings, args: argparse.Namespace) -> int:
    """Replace the administrative boundaries by a file's; print the problems and exit 1 if it is refused."""
    from core.errors import InvalidInput
    from geodata.region_store import BoundaryImport, import_boundaries

    spec = BoundaryImport(
        path=Path(args.file),
        source=args.source,
        licence=args.licence,
        datum=args.datum,
        as_of=args.as_of,
        code_field=args.code_field,
    )
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            dataset = import_boundaries(session, spec, actor="system:cli", clock=SystemClock())
            print(f"imported {dataset.feature_count} boundaries, version {dataset.version}")
    except OSError as error:
        print(f"refused: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 1
    except InvalidInput as error:
        print(f"refused: {error.detail}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {json.dumps(problem, ensure_ascii=False)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    """Load the demo data (idempotent) and print the demo credentials."""
    from api.seed import credentials_text, seed_demo, seed_gep, seed_issued, seed_rasters
    from api.seed_fishery import FISHERY_ORG, seed_fishery_demo
    from api.seed_reversal import seed_reversal

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            created = seed_demo(session, Path(args.samples), clock=SystemClock())
            issued = seed_issued(
                session, Path(args.samples), evidence_dir=settings.resolved_evidence_dir, clock=SystemClock()
            )
            fishery = seed_fishery_demo(session, clock=SystemClock())
            reversal = seed_reversal(session, raster_dir=settings.raster_dir, clock=SystemClock())
            rasters = seed_rasters(session, settings.raster_dir, clock=SystemClock())
            gep_run = seed_gep(
                session,
                Path(args.samples),
                raster_dir=settings.raster_dir,
                data_dir=settings.data_dir,
                clock=SystemClock(),
            )
    finally:
        engine.dispose()
    print("demo data loaded" if created else "demo data already present")
    if issued:
        print(f"demo reports verified and issued: {issued} (see /public/v1/batches)")
    if fishery.created:
        print(f"fishery demo project {fishery.project_id} issued (batch {fishery.batch_id}, shellfish and seaweed)")
    if reversal is not None:
        print(f"demo reversal: loss event {reversal} on Haicang confirmed, tonnes cancelled from the buffer pool")
    if rasters:
        print(f"raster layers registered: {', '.join(rasters)}")
    if gep_run is not None:
        print(f"GEP demo run {gep_run} computed (synthetic stack): GET /api/v1/gep/runs/{gep_run}")
    print(credentials_text(extra=(FISHERY_ORG,)))
    return 0


def cmd_user_set_password(settings: Settings, args: argparse.Namespace) -> int:
    """Set a user's password (read from standard input, or asked for on a terminal) under the password policy."""
    import getpass

    from core.auth import set_password
    from core.errors import InvalidInput, NotFound

    password = getpass.getpass("new password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            set_password(session, username=args.username, password=password, actor="system:cli", clock=SystemClock())
    except NotFound as error:
        print(error.detail, file=sys.stderr)
        return 1
    except InvalidInput as error:
        print("; ".join([error.detail, *(problem["reason"] for problem in error.problems)]), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"password of {args.username} changed")
    return 0


def cmd_user_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    """Deactivate a user: tokens and API keys are refused, and every web session of theirs ends at once (audited)."""
    from sqlalchemy import select

    from core.auth import User
    from core.sessions import deactivate_user

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username == args.username)).first()
            if user is None:
                print(f"no user is named {args.username!r}", file=sys.stderr)
                return 1
            ended = deactivate_user(session, user, actor="system:cli", clock=SystemClock())
    finally:
        engine.dispose()
    print(f"{args.username} deactivated; {ended} web session(s) ended")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the API with uvicorn in ``SHANHAI_API_PROCESSES`` processes, without a ``server`` header."""
    import uvicorn

    from shanhai.app import create_app

    configure_logging(settings.log_format, settings.log_level)
    if settings.prometheus_multiproc_dir is not None:
        clean_multiprocess_dir(settings.prometheus_multiproc_dir)  # the files of the last run's processes go
    if settings.api_processes > 1:
        # Each worker process builds its app from the same environment (the settings already validated here:
        # several processes need the Redis rate-limit storage).
        if settings.metrics_port is not None:
            start_metrics_server(settings.metrics_host, settings.metrics_port)
        uvicorn.run("shanhai.app:create_app", factory=True, host=args.host, port=args.port,
                    workers=settings.api_processes, server_header=False, access_log=False, log_config=None)  # fmt: skip
        return 0
    app = create_app(settings)  # chooses the metrics mode first
    if settings.metrics_port is not None:
        start_metrics_server(settings.metrics_host, settings.metrics_port)
    # Our request middleware writes the access log; uvicorn's own records go to the root logger's format.
    uvicorn.run(app, host=args.host, port=args.port, server_header=False, access_log=False, log_config=None)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Upgrade, seed and serve."""
    cmd_db_upgrade(settings, args)
    cmd_seed(settings, args)
    print(f"serving on http://{args.host}:{args.port}/ (the pages; the API and its OpenAPI docs at /docs)")
    return cmd_serve(settings, args)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a Celery worker against the configured broker and database."""
    from api.worker import configure_gdal, create_celery

    if settings.broker_url is None:
        print("SHANHAI_BROKER_URL is not set: without a broker, tasks run inside the API process", file=sys.stderr)
        return 2
    from celery.signals import worker_process_init, worker_process_shutdown

    configure_gdal(settings)
    configure_logging(settings.log_format, settings.log_level)
    # Not emptied here: the directory may be shared with a running API process (ADR 029).
    configure_multiprocess(settings.prometheus_multiproc_dir)  # pool processes inherit it when forked
    if settings.metrics_port is not None:
        start_metrics_server(settings.metrics_host, settings.metrics_port)  # the pool's jobs, added up
    engine = make_engine(settings.resolved_database_url)

    @worker_process_init.connect(weak=False)
    def _fresh_pool(**_kwargs: object) -> None:
        # Connections must not be shared across fork: each worker process opens its own.
        engine.dispose(close=False)

    @worker_process_shutdown.connect(weak=False)
    def _process_gone(pid: int | None = None, **_kwargs: object) -> None:
        process_exited(pid or os.getpid())

    celery = create_celery(settings, make_session_factory(engine), SystemClock())
    argv = ["worker", f"--loglevel={args.loglevel}", f"--pool={args.pool}", f"--concurrency={args.concurrency}"]
    celery.worker_main([*argv, "--beat"] if args.beat else argv)
    return 0


def _public_key(settings: Settings, args: argparse.Namespace) -> Ed25519PublicKey:
    if args.public_key is not None:
        return load_public_key_pem(Path(args.public_key).read_bytes())
    return load_signing_key(settings).public_key()


def _kept_head(args: argparse.Namespace) -> SignedTreeHead | None:
    return None if args.tree_head is None else read_tree_head(Path(args.tree_head))


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Verify the audit chain (or an export) and a kept tree head; print the report as JSON; exit 1 when broken."""
    if args.checkpoint is not None:
        return _verify_checkpoint(settings, args)
    if args.export is not None:
        return _verify_export(args)
    try:
        kept = _kept_head(args)
        public_key = _public_key(settings, args) if kept is not None else None
    except (OSError, ValueError) as error:
        print(f"cannot read the tree head or public key: {error}", file=sys.stderr)
        return 1
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            report = verify_chain(session)
            violations = ledger_violations(session)
            problems: list[str] = []
            if report.ok and kept is not None and public_key is not None:
                tree = MerkleTree()
                for entry in iter_entries(session):
                    tree.append(bytes.fromhex(entry.entry_hash))
                problems = check_kept_head(tree, kept, public_key)
    finally:
        engine.dispose()
    output = report.as_dict()
    output["ledger_violations"] = [{"rule": v.rule, "batch_id": v.batch_id, "detail": v.detail} for v in violations]
    if kept is not None:
        output["tree_head"] = {"tree_size": kept.tree_size, "ok": report.ok and not problems, "problems": problems}
    print(json.dumps(output, indent=2))
    if not report.ok:
        print(f"audit chain broken at entry {report.first_broken_seq}: {report.reason}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"tree head of size {kept.tree_size if kept else 0}: {problem}", file=sys.stderr)
    for violation in violations:
        print(
            f"ledger invariant {violation.rule} broken (batch {violation.batch_id}): {violation.detail}",
            file=sys.stderr,
        )
    return 1 if problems or violations else 0


def _verify_export(args: argparse.Namespace) -> int:
    try:
        kept = _kept_head(args)
        public_key = None if args.public_key is None else load_public_key_pem(Path(args.public_key).read_bytes())
    except (OSError, ValueError) as error:
        print(f"cannot read the tree head or public key: {error}", file=sys.stderr)
        return 1
    report = verify_export(Path(args.export), kept_head=kept, public_key=public_key)
    print(json.dumps(report.as_dict(), indent=2))
    for problem in report.problems:
        print(f"export {args.export}: {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def _witness_policy_of(settings: Settings, args: argparse.Namespace) -> tuple[str, list[WitnessKey], int]:
    """Return (log vkey, witnesses, quorum) from the options, the export's files, or the settings."""
    folder = Path(args.witnesses).parent if args.witnesses else Path(args.export) if args.export else None
    if folder is not None and (folder / WITNESSES_FILE).exists():
        vkey, witnesses, quorum = read_witness_files(folder)
    else:
        policy = WitnessPolicy.from_settings(settings)
        vkey, witnesses, quorum = (
            log_vkey(policy.origin, load_signing_key(settings).public_key()),
            list(policy.keys),
            policy.quorum,
        )
    return args.log_vkey or vkey, witnesses, quorum


def _verify_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    """Check a checkpoint note offline: log signature, k-of-n cosignatures, and the log's tree at its size."""
    try:
        note = Path(args.checkpoint).read_text(encoding="utf-8")
        vkey, witnesses, quorum = _witness_policy_of(settings, args)
        origin, _type, public_key = parse_vkey(vkey)
    except (OSError, ValueError) as error:
        print(f"cannot read the checkpoint or the witness policy: {error}", file=sys.stderr)
        return 1
    check = check_witnessed(note, (origin, public_key), witnesses, quorum)
    problems = list(check.problems)
    if check.checkpoint is not None:
        problems += _check_tree_at(settings, args, check.checkpoint.tree_size, check.checkpoint.root_hash.hex())
    output = {
        "ok": not problems,
        "origin": origin,
        "tree_size": check.checkpoint.tree_size if check.checkpoint else None,
        "root_hash": check.checkpoint.root_hash.hex() if check.checkpoint else None,
        "cosigned_by": list(check.cosigned_by),
        "quorum": quorum,
        "problems": problems,
    }
    print(json.dumps(output, indent=2))
    for problem in problems:
        print(f"checkpoint {args.checkpoint}: {problem}", file=sys.stderr)
    return 0 if not problems else 1


def _check_tree_at(settings: Settings, args: argparse.Namespace, size: int, root: str) -> list[str]:
    """Return why the log (the export's entries, or the database's) does not have ``root`` at ``size``."""
    if args.export is not None:
        report = verify_export(Path(args.export))
        if not report.ok:
            return report.problems
        tree = MerkleTree()
        with (Path(args.export) / "entries.jsonl").open("rb") as lines:
            for line in lines:
                tree.append(bytes.fromhex(json.loads(line)["entry_hash"]))
    else:
        engine = make_engine(settings.resolved_database_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                tree = MerkleTree()
                for entry in iter_entries(session):
                    tree.append(bytes.fromhex(entry.entry_hash))
        finally:
            engine.dispose()
    if tree.size < size:
        return [f"the log has {tree.size} entries, the checkpoint covers {size}: entries were removed"]
    if tree.root(size).hex() != root:
        return [f"the log's first {size} entries do not hash to the checkpoint's root: history was rewritten"]
    return []


def cmd_audit_vkey(settings: Settings, _args: argparse.Namespace) -> int:
    """Print the log's checkpoint origin line and its note verifier key."""
    print(log_vkey(settings.audit_log_origin, load_signing_key(settings).public_key()))
    return 0


def cmd_audit_witness(settings: Settings, _args: argparse.Namespace) -> int:
    """Run one witnessing round now; print the outcome; exit 1 unless the head is witnessed."""
    key, policy = load_signing_key(settings), WitnessPolicy.from_settings(settings)
    if not policy.witnesses:
        print("no witnesses configured (SHANHAI_AUDIT_WITNESSES)", file=sys.stderr)
        return 1
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            result = witness_round(session, AuditTree(), key, SystemClock(), policy, UrllibTransport())
    except (AuditChainBroken, AuditLogInconsistent) as error:
        print(f"nothing submitted: {error.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    outcomes = [outcome.__dict__ for outcome in result.outcomes]
    print(json.dumps({**result.__dict__, "outcomes": outcomes, "anchored": []}, indent=2))
    return 0 if result.witnessed else 1


def cmd_witness_serve(_settings: Settings, args: argparse.Namespace) -> int:
    """Run a C2SP tlog-witness for the logs of ``--log`` until interrupted."""
    from witness.server import build_witness, load_key, serve

    configure_logging(args.log_format, "INFO")
    try:
        key = None if args.key_file is None else load_key(Path(args.key_file))
        witness = build_witness(args.name, Path(args.state_dir), list(args.log), key)
    except (OSError, ValueError) as error:
        print(f"cannot start the witness: {error}", file=sys.stderr)
        return 1
    serve(witness, host=args.host, port=args.port)
    return 0


def cmd_witness_vkey(_settings: Settings, args: argparse.Namespace) -> int:
    """Print the witness's cosignature/v1 verifier key, creating its key in ``--state-dir`` the first time."""
    from witness.note import cosigner_vkey
    from witness.server import load_key, load_or_create_key

    try:
        key = load_or_create_key(Path(args.state_dir)) if args.key_file is None else load_key(Path(args.key_file))
    except (OSError, ValueError) as error:
        print(f"cannot read the witness key: {error}", file=sys.stderr)
        return 1
    print(cosigner_vkey(args.name, key.public_key()))
    return 0


def cmd_audit_verify_certificate(settings: Settings, args: argparse.Namespace) -> int:
    """Check a certificate PDF offline (embedded facts, signature, inclusion proof); exit 1 when it fails."""
    try:
        facts = facts_of_pdf(Path(args.file).read_bytes())
        public_key = _public_key(settings, args)
    except (OSError, ValueError) as error:  # pypdf's PdfReadError is a ValueError too
        print(f"cannot read the certificate or public key: {error}", file=sys.stderr)
        return 1
    problems = check_certificate(facts, public_key)
    head = facts.get("tree_head") or {}
    report = {
        "ok": not problems,
        "verification_code": facts.get("verification_code"),
        "quantity_t": facts.get("quantity_t"),
        "tree_size": head.get("tree_size"),
        "key_id": head.get("key_id"),
        "problems": problems,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    for problem in problems:
        print(f"certificate {args.file}: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_audit_publish_head(settings: Settings, args: argparse.Namespace) -> int:
    """Sign the tree head of the whole log; print it or write it to ``--out``; exit 1 if the log is broken."""
    key = load_signing_key(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            head = publish_tree_head(session, AuditTree(), key, SystemClock())
    except (AuditChainBroken, AuditLogInconsistent) as error:
        print(f"no tree head signed: {error.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.out is None:
        print(json.dumps(head.as_dict(), indent=2))
    else:
        write_tree_head(Path(args.out), head)
        print(f"tree head of {head.tree_size} entries written to {args.out}")
    return 0


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export entries, tree head and public key to ``--out``; exit 1 if the log is broken."""
    key = load_signing_key(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            head = export_log(session, Path(args.out), key=key, clock=SystemClock())
            session.commit()  # the signed head is stored with the others (ADR 028)
            witnessed = publish_witness_files(session, Path(args.out), key, WitnessPolicy.from_settings(settings))
    except (AuditChainBroken, AuditLogInconsistent) as error:
        print(f"export stopped: {error.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"{head.tree_size} entries and their tree head (root {head.root_hash}) written to {args.out}")
    if witnessed is not None:
        print(f"the latest witnessed checkpoint ({witnessed} entries) written to {Path(args.out) / CHECKPOINT_FILE}")
    return 0


def cmd_eco_recompute(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild every statement (or one exported record); print each hash; exit 1 on a mismatch, 2 on a bad file."""
    from core.errors import ShanhaiError
    from ecovalue.statements import rebuild_all, recompute

    if args.record:
        document = json.loads(Path(args.record).read_text(encoding="utf-8"))
        record = document.get("record", document) if isinstance(document, dict) else document
        stored = document.get("record_sha256") if isinstance(document, dict) and "record" in document else None
        try:
            digest = recompute(record)
        except ShanhaiError as error:
            print(f"{args.record}: {error.detail}", file=sys.stderr)
            return 2
        print(f"recomputed sha256: {digest}")
        if stored is not None:
            print(f"stored sha256:     {stored}")
        ok = stored in (None, digest)
        print("matches" if ok else "MISMATCH: the record is not reproduced")
        return 0 if ok else 1
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            results = rebuild_all(session)
    finally:
        engine.dispose()
    for result in results:
        verdict = "ok" if result.matches else f"MISMATCH {result.problem or result.recomputed_sha256}"
        print(f"statement {result.statement_id}: {result.record_sha256} {verdict}")
    failed = sum(not r.matches for r in results)
    print(f"{len(results)} statement(s) recomputed, {failed} mismatch(es)")
    return 1 if failed else 0


def cmd_eco_demo(settings: Settings, _args: argparse.Namespace) -> int:
    """Build the synthetic eco-compensation and collateral demo (idempotent)."""
    from ecovalue.demo import seed_ecovalue

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            ids = seed_ecovalue(
                session, raster_dir=settings.raster_dir, data_dir=settings.data_dir, clock=SystemClock()
            )
    finally:
        engine.dispose()
    if ids is None:
        print("eco demo not built: already there, or `shanhai seed` data or the later-year rasters are missing")
        return 0
    print(f"eco demo built: GEP runs {ids.runs}, agreements {ids.agreements}, statements {ids.statements}")
    print(
        f"right {ids.right_id} pledged ({ids.pledge_id}) and re-valued below the bank's threshold (GET /api/v1/inbox)"
    )
    return 0


def cmd_carbon_compute(_settings: Settings, args: argparse.Namespace) -> int:
    """Recompute a stored report record offline; print the hashes; exit 1 on a mismatch, 2 on a bad file."""
    from carbon.monitoring_records import check_record
    from core.errors import ShanhaiError

    document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        print(f"{args.file}: not a report trace or result record", file=sys.stderr)
        return 2
    record = document.get("record", document)
    stored = document.get("record_sha256") if "record" in document else None
    try:
        check = check_record(record)
    except ShanhaiError as error:
        print(f"{args.file}: {error.detail}", file=sys.stderr)
        return 2
    print(f"hash scheme:       {check.hash_scheme}")
    print(f"recomputed sha256: {check.recomputed_sha256}")
    print(f"record sha256:     {check.record_sha256}")
    if stored is not None:
        print(f"stored sha256:     {stored}")
    if not check.parameter_set_sha256_matches:
        print("note: the packaged parameter set differs from the one the record names (sha256)")
    ok = check.matches and stored in (None, check.recomputed_sha256)
    print("matches: the record is reproduced byte for byte" if ok else "MISMATCH: the record is not reproduced")
    return 0 if ok else 1


def cmd_carbon_methodologies(_settings: Settings, _args: argparse.Namespace) -> int:
    """List the registered methodologies with their parameter sets and provisional labels."""
    from carbon.methods.registry import default_registry
    from carbon.monitoring_adapters import ADAPTERS
    from carbon.parameters.loader import available_parameter_sets, load_parameter_set

    registry = default_registry()
    for key in registry.keys():
        methodology = registry.get(*key)
        reports = "monitoring reports" if methodology.id in ADAPTERS else "calculation only"
        print(f"{methodology.id} {methodology.version}  [{methodology.credit_class}; {reports}]")
        print(f"    {methodology.title}")
        for set_id, version in available_parameter_sets():
            if set_id != methodology.default_parameter_set[0]:
                continue
            parameters = load_parameter_set(set_id, version)
            label = f"PROVISIONAL: {parameters.provisional_reason}" if parameters.provisional else "confirmed"
            default = " (default)" if version == methodology.default_parameter_set[1] else ""
            print(f"    {set_id}@{version}{default} sha256 {parameters.sha256[:16]}… {label}")
    return 0


def cmd_gep_run(_settings: Settings, args: argparse.Namespace) -> int:
    """Run a GEP accounting offline; print the summary; exit 2 on a refused input."""
    from core.errors import ShanhaiError
    from gep.offline import run_offline

    try:
        _merged, summary = run_offline(Path(args.config), Path(args.out), xlsx=args.xlsx)
    except ShanhaiError as error:
        print(f"{args.config}: {error.detail}", file=sys.stderr)
        for problem in getattr(error, "problems", [])[:20]:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"{'region':<16} {'regulating (yuan)':>22} {'GEP (yuan)':>22}")
    for row in summary:
        print(f"{row.region_code:<16} {row.regulating_yuan:>22} {row.gep_yuan:>22}")
    workbook = " and tables.xlsx" if args.xlsx else ""
    print(f"tables (CSV{workbook}), value rasters and run.json written to {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shanhai", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the latest revision").set_defaults(func=cmd_db_upgrade)
    seed = commands.add_parser("seed", help="load the demo data")
    seed.add_argument("--samples", default="samples", help="folder holding demo_plots.geojson")
    seed.set_defaults(func=cmd_seed)
    for name, func in (("run", cmd_run), ("serve", cmd_serve)):
        sub = commands.add_parser(name, help=func.__doc__)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=8000)
        sub.add_argument("--samples", default="samples")
        sub.set_defaults(func=func)
    worker = commands.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--beat", action="store_true",
                        help="also run the scheduler (trading sweep); run it in one worker only")  # fmt: skip
    worker.set_defaults(func=cmd_worker)
    audit = commands.add_parser("audit", help="audit log").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="verify the hash chain (database or export) and a kept tree head")
    verify.add_argument("--tree-head", help="a signed tree head kept earlier (JSON file)")
    verify.add_argument("--export", help="verify this export directory instead of the database")
    verify.add_argument("--public-key", help="the log's Ed25519 public key (PEM)")
    verify.add_argument("--checkpoint", help="check this C2SP checkpoint note's signatures and cosignatures")
    verify.add_argument("--witnesses", help="witnesses.txt ('quorum <k>' and vkeys); default: beside the export")
    verify.add_argument("--log-vkey", help="the log's note verifier key; default: log.vkey, or the configured key's")
    verify.set_defaults(func=cmd_audit_verify)
    audit.add_parser("vkey", help="print the log's checkpoint note verifier key").set_defaults(func=cmd_audit_vkey)
    audit.add_parser("witness", help="submit the newest checkpoint to the witnesses now").set_defaults(
        func=cmd_audit_witness
    )
    publish = audit.add_parser("publish-head", help="sign and print the current tree head")
    publish.add_argument("--out", help="write the tree head to this file instead of stdout")
    publish.set_defaults(func=cmd_audit_publish_head)
    export = audit.add_parser("export", help="export entries with their signed tree head")
    export.add_argument("--out", required=True, help="directory to write")
    export.set_defaults(func=cmd_audit_export)
    certificate = audit.add_parser("verify-certificate", help="check a retirement certificate PDF offline")
    certificate.add_argument("file", help="the certificate PDF")
    certificate.add_argument("--public-key", help="the log's Ed25519 public key (PEM); default: the configured key's")
    certificate.set_defaults(func=cmd_audit_verify_certificate)
    witness = commands.add_parser("witness", help="a C2SP tlog-witness").add_subparsers(
        dest="witness_command", required=True
    )
    witness_serve = witness.add_parser("serve", help="run the witness's HTTP service")
    witness_vkey = witness.add_parser("vkey", help="print the witness's verifier key")
    for sub in (witness_serve, witness_vkey):
        sub.add_argument("--name", required=True, help="the witness's key name, e.g. witness.fujian.example/shanhai")
        sub.add_argument("--state-dir", required=True, help="where its kept checkpoints and evidence live")
        sub.add_argument("--key-file", help="its Ed25519 key (PEM PKCS#8); default: generated once in --state-dir")
        sub.set_defaults(standalone=True)  # a witness reads none of the platform's settings
    witness_serve.add_argument("--log", action="append", required=True, help="a followed log's note vkey")
    witness_serve.add_argument("--host", default="127.0.0.1")
    witness_serve.add_argument("--port", type=int, default=8100)
    witness_serve.add_argument("--log-format", choices=["text", "json"], default="text")
    witness_serve.set_defaults(func=cmd_witness_serve)
    witness_vkey.set_defaults(func=cmd_witness_vkey)
    carbon = commands.add_parser("carbon", help="methodologies and reports").add_subparsers(
        dest="carbon_command", required=True
    )
    compute = carbon.add_parser("compute", help="recompute an exported report trace offline")
    compute.add_argument("file", help="JSON from GET /api/v1/monitoring-reports/{id}/trace, or a bare record")
    compute.set_defaults(func=cmd_carbon_compute)
    carbon.add_parser("methodologies", help="list methodologies and parameter sets").set_defaults(
        func=cmd_carbon_methodologies
    )
    regions = commands.add_parser("regions", help="administrative boundaries").add_subparsers(
        dest="regions_command", required=True
    )
    regions_import = regions.add_parser("import", help="replace the boundaries (GB/T 2260 provinces and counties)")
    regions_import.add_argument("file", help="GeoJSON, GeoPackage or zipped Shapefile")
    regions_import.add_argument("--source", required=True, help="where the boundaries come from (shown on maps)")
    regions_import.add_argument("--licence", required=True, help="their licence or terms of use")
    regions_import.add_argument("--datum", choices=["cgcs2000", "wgs84", "gcj02"], default="cgcs2000")
    regions_import.add_argument("--code-field", default="code", help="the field holding the six-digit code")
    regions_import.add_argument("--as-of", default="", help="the date or edition of the boundaries")
    regions_import.set_defaults(func=cmd_regions_import)
    user = commands.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    set_password = user.add_parser("set-password", help="set a password (from standard input) under the policy")
    set_password.add_argument("username")
    set_password.set_defaults(func=cmd_user_set_password)
    deactivate = user.add_parser("deactivate", help="deactivate a user and end their web sessions at once")
    deactivate.add_argument("username")
    deactivate.set_defaults(func=cmd_user_deactivate)
    gep = commands.add_parser("gep", help="GEP accounting").add_subparsers(dest="gep_command", required=True)
    gep_run = gep.add_parser("run", help="run an accounting offline from a YAML/JSON configuration")
    gep_run.add_argument("config", help="configuration file (raster and region paths relative to it)")
    gep_run.add_argument("--out", default="gep-run", help="output directory")
    gep_run.add_argument("--xlsx", action="store_true", help="also write the SEEA-EA tables as tables.xlsx")
    gep_run.set_defaults(func=cmd_gep_run)
    eco = commands.add_parser("eco", help="eco-compensation and product rights").add_subparsers(
        dest="eco_command", required=True
    )
    recompute = eco.add_parser("recompute", help="rebuild every statement and compare its hash")
    recompute.add_argument("--record", help="a statement record (or GET /api/v1/eco/statements/{id} JSON) instead")
    recompute.set_defaults(func=cmd_eco_recompute)
    eco.add_parser("demo", help="build the synthetic eco-compensation demo").set_defaults(func=cmd_eco_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shanhai`` console script."""
    args = _parser().parse_args(argv)
    # A witness runs apart from the platform: it neither needs nor validates the platform's settings.
    settings = Settings.model_construct() if getattr(args, "standalone", False) else get_settings()
    code: int = args.func(settings, args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
