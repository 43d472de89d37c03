"""The volunteer time bank (公益时间银行) as a double-entry ledger: accounts, periods, errors.

Every movement of points is one row of ``ledger_entries`` that takes `amount`
from a debit account and gives it to a credit account, so the balances of all
accounts always sum to zero. The community account issues points: it is the
only account allowed below zero, and minus its balance is the number of points
in circulation. Rows are never updated or deleted; a correction is a new
entry with the two accounts swapped (a reversal).

Accounts:

- ``community``: one, no owner; debited by every award, credited by reversals.
- ``user``: one open account per person; what they may redeem.
- ``reserved``: one open account per person; points held by redemptions that
  wait for approval, so they can neither be spent twice nor disappear.
- ``spent``: one, no owner; where approved redemptions end.

The balance stored with each account is a cache of the sum of its entries,
kept in the same transaction as each entry: a CHECK makes "no account but the
community's below zero" a database guarantee, and ``/points`` reads one row.
``LedgerRepo.discrepancies`` recomputes everything from the entries.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

COMMUNITY = "community"
USER = "user"
RESERVED = "reserved"
SPENT = "spent"
ACCOUNT_KINDS = (COMMUNITY, USER, RESERVED, SPENT)
# Accounts nobody owns: exactly one of each.
SYSTEM_KINDS = (COMMUNITY, SPENT)

# Earnings (net points a person received from the community) are kept per
# month of the community's calendar and for all time, under this period name.
ALL_TIME = "all"

# Reasons the storage layer writes on its own; callers give the others.
REASON_REDEMPTION_APPROVED = "points.reason.redemption_approved"
REASON_REDEMPTION_REJECTED = "points.reason.redemption_rejected"
REASON_ACCOUNTS_MERGED = "points.reason.accounts_merged"
REASON_REDEMPTION_MERGED = "points.reason.redemption_merged"


def month_of(moment: datetime, tz: tzinfo) -> str:
    """The leaderboard period ("2026-05") `moment` falls in, on the community's calendar."""
    return moment.astimezone(tz).strftime("%Y-%m")


def redemption_ref(redemption_id: int) -> str:
    """What the ledger calls a redemption's held points and their settlement."""
    return f"redemption:{redemption_id}"


def reserve_key(ref: str) -> str:
    return f"redeem:{ref}:reserve"


def settle_key(ref: str) -> str:
    # Approval and rejection share one key: a redemption is settled once, one way.
    return f"redeem:{ref}:settle"


def reversal_key(entry_id: int) -> str:
    return f"reverse:{entry_id}"


class LedgerError(Exception):
    """A movement the ledger refuses."""


class InsufficientPoints(LedgerError):
    """The debit account holds fewer points than the movement takes."""

    def __init__(self, account_id: int, amount: int) -> None:
        super().__init__(f"account {account_id} cannot give {amount} points")
        self.account_id = account_id
        self.amount = amount
