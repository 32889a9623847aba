"""The registry ledger: its tables and its operations — the public face the other packages use (ADR 031).

Modules, one per operation family:

* :mod:`~carbon.ledger.tables` — the ORM tables (accounts, batches, serial blocks, movements, retirements,
  pending transfers, credit-class rules);
* :mod:`~carbon.ledger.unit_of_work` — :class:`UnitOfWork`, the one transaction boundary: operations write
  into it, the caller commits it;
* :mod:`~carbon.ledger.accounts` — accounts, the hold rule, the account-row locks (ADR 022);
* :mod:`~carbon.ledger.holdings` — taking and moving blocks, coalescing (ADR 016), holdings reads;
* :mod:`~carbon.ledger.issuance`, :mod:`~carbon.ledger.transfers`, :mod:`~carbon.ledger.states` (escrow,
  pledge, cancel, the exchange's delivery), :mod:`~carbon.ledger.retirement` (the one :func:`retire`),
  :mod:`~carbon.ledger.reversal`;
* :mod:`~carbon.ledger.serials` (serial strings of block rows), :mod:`~carbon.ledger.invariants` (pure
  conservation checks), :mod:`~carbon.ledger.certificates` (retirement certificates).

Operations that write take a :class:`UnitOfWork` and never commit; reads take a session. The registry's
commands (``issue_batch``, ``transfer``, ``retire_units``, ``reverse``, ``change_state``…) open a unit over the
caller's session and commit it once.
"""

from carbon.ledger.accounts import (
    HOLDER_KINDS,
    account_in,
    account_of,
    accounts_in,
    buffer_account,
    check_receiver,
    lock_accounts,
    receiving_account,
)
from carbon.ledger.holdings import Piece, ledger_violations, open_blocks, tradable_t
from carbon.ledger.issuance import IssueBatch, issue, issue_batch
from carbon.ledger.retirement import COMPLIANCE_RULES, Retired, RetireUnits, retire, retire_units, retired_payload
from carbon.ledger.reversal import CoverPreview, Reversal, cover, cover_preview, reverse
from carbon.ledger.serials import serial_of, serials
from carbon.ledger.states import (
    STATE_CHANGES,
    Escrowable,
    cancel,
    change_state,
    deliver,
    enforce,
    escrow,
    escrow_taken,
    escrowable,
    pledge,
    release,
    settle_escrowed,
    settle_release,
    unpledge,
)
from carbon.ledger.tables import (
    CLASS_OF_SCHEME,
    Account,
    AccountKind,
    Batch,
    BlockState,
    CreditClass,
    CreditClassPolicy,
    HoldingBlock,
    Movement,
    PendingTransfer,
    Retirement,
    ReversalRule,
    TransferStatus,
)
from carbon.ledger.transfers import (
    class_policies,
    decide,
    decide_transfer,
    expire,
    expire_transfers,
    pending_transfer_of,
    send,
    transfer,
)
from carbon.ledger.unit_of_work import UnitOfWork

__all__ = [
    "CLASS_OF_SCHEME", "COMPLIANCE_RULES", "HOLDER_KINDS", "STATE_CHANGES", "Account", "AccountKind", "Batch",
    "BlockState", "CoverPreview", "CreditClass", "CreditClassPolicy", "Escrowable", "HoldingBlock", "IssueBatch",
    "Movement", "PendingTransfer",
    "Piece", "RetireUnits", "Retired", "Retirement", "Reversal", "ReversalRule", "TransferStatus", "UnitOfWork",
    "account_in", "account_of", "accounts_in", "buffer_account", "cancel", "change_state", "check_receiver",
    "class_policies", "cover", "cover_preview", "decide", "decide_transfer", "deliver", "enforce", "escrow",
    "escrow_taken", "escrowable", "expire",
    "expire_transfers", "issue", "issue_batch", "ledger_violations", "lock_accounts", "open_blocks",
    "pending_transfer_of", "pledge", "receiving_account", "release", "retire", "retire_units", "retired_payload",
    "reverse", "send", "serial_of", "serials", "settle_escrowed", "settle_release", "tradable_t", "transfer",
    "unpledge",
]  # fmt: skip
