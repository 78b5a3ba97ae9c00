"""Who may do what: the signed-in principal (``Actor``) and the role check every write makes.

Pages and stages pass an ``Actor`` to each write function; the function re-reads the account in
its own transaction, so a role changed or an account disabled since sign-in takes effect at once.
The check lives here, in ``db``, not only in which buttons a page draws.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlmodel import Session

from db.models import Reviewer, ReviewerRole

__all__ = ["OPERATOR", "ROLE_PERMISSIONS", "Actor", "Permission", "PermissionDenied", "actor_of",
           "authorize"]


class Permission(enum.StrEnum):
    review = "review"  # answer findings of reports assigned to one (or unassigned ones)
    approve_knowledge = "approve knowledge"  # set an IKI entry to approved
    adjudicate = "adjudicate"  # settle a disputed report
    manage_accounts = "manage accounts"  # create accounts, change roles, disable
    assign = "assign"  # assign studies to reviewers


ROLE_PERMISSIONS: dict[ReviewerRole, frozenset[Permission]] = {
    ReviewerRole.reviewer: frozenset({Permission.review}),
    ReviewerRole.adjudicator: frozenset({Permission.review, Permission.approve_knowledge,
                                         Permission.adjudicate}),
    ReviewerRole.admin: frozenset(Permission),
}


class PermissionDenied(Exception):
    """A write refused for who asked: not signed in, disabled, or a role without the right."""


@dataclass(frozen=True)
class Actor:
    """The principal of a write: a signed-in account (``id``) or the command-line operator."""

    id: int | None
    name: str
    role: ReviewerRole

    def can(self, permission: Permission) -> bool:
        """What the page may offer (the write functions check again against the store)."""
        return permission in ROLE_PERMISSIONS[ReviewerRole(self.role)]


# Someone running ``python -m db reviewers ...`` or ``python -m pipeline.assign`` on the store's
# host already holds the database itself; the CLIs act as this principal (events with no
# reviewer_id). The app never builds it: its actors come from a sign-in.
OPERATOR = Actor(None, "operator (command line)", ReviewerRole.admin)


def actor_of(reviewer: Reviewer) -> Actor:
    return Actor(reviewer.id, reviewer.name, ReviewerRole(reviewer.role))


def authorize(actor: Actor | None, permission: Permission, *, session: Session) -> Reviewer | None:
    """The actor's current account row (None for the operator), or PermissionDenied."""
    if actor is None:
        raise PermissionDenied("Sign in first: nothing is saved without a signed-in account.")
    if actor is OPERATOR:
        return None
    row = session.get(Reviewer, actor.id, populate_existing=True) if actor.id else None
    if row is None or row.disabled:
        raise PermissionDenied(f"The account {actor.name!r} is disabled or no longer exists.")
    role = ReviewerRole(row.role)
    if permission not in ROLE_PERMISSIONS[role]:
        raise PermissionDenied(f"{row.name} is a {role.value}: a {role.value} may not "
                               f"{permission.value}.")
    return row
