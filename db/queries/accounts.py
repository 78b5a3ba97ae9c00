"""Accounts: local sign-in (argon2id hashes), OIDC subjects, roles, disabling; all audited.

Creating an account, changing a role, a password or disabling are ReviewEvents with
entity "reviewer"; the snapshots never hold a password or its hash.
"""

from __future__ import annotations

import json

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from db.models import Reviewer, ReviewerRole, ReviewEvent
from db.queries.auth import Actor, Permission, actor_of, authorize

__all__ = ["MIN_PASSWORD_CHARS", "authenticate", "create_account", "disable_account",
           "find_oidc_account", "get_account", "hash_password", "list_accounts",
           "reviewer_snapshot", "set_password", "set_role"]

MIN_PASSWORD_CHARS = 8
_HASHER = PasswordHasher()  # argon2id, argon2-cffi's RFC 9106 "low memory" defaults
# verified against when the name is unknown, so a miss costs what a wrong password costs
_DUMMY_HASH = _HASHER.hash("not-a-real-password")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


def reviewer_snapshot(r: Reviewer) -> dict:
    """An account as its audit events record it: no password, no hash."""
    return {"name": r.name, "role": ReviewerRole(r.role).value, "disabled": r.disabled,
            "oidc_subject": r.oidc_subject, "has_password": r.password_hash is not None}


def _audit(actor: Actor, reviewer: Reviewer, action: str, before: dict | None, *,
           session: Session) -> None:
    session.add(ReviewEvent(reviewer_id=actor.id, entity="reviewer", entity_id=reviewer.id,
                            action=action, before_json=json.dumps(before) if before else None,
                            after_json=json.dumps(reviewer_snapshot(reviewer))))


def get_account(name: str, *, session: Session) -> Reviewer | None:
    return session.exec(select(Reviewer).where(Reviewer.name == " ".join(name.split()))).first()


def _account(name: str, *, session: Session) -> Reviewer:
    reviewer = get_account(name, session=session)
    if reviewer is None:
        raise ValueError(f"no account named {name!r}")
    return reviewer


def list_accounts(*, session: Session) -> list[Reviewer]:
    return list(session.exec(select(Reviewer).order_by(Reviewer.name)
                             .execution_options(populate_existing=True)))


def create_account(name: str, role: ReviewerRole, *, actor: Actor, session: Session,
                   password: str | None = None, oidc_subject: str | None = None) -> Reviewer:
    """A new account signing in with ``password`` (local) or as ``oidc_subject`` (OIDC)."""
    authorize(actor, Permission.manage_accounts, session=session)
    name = " ".join(name.split())
    if not name:
        raise ValueError("an account needs a name")
    if password is None and not oidc_subject:
        raise ValueError("an account needs a password or an OIDC subject to sign in with")
    if get_account(name, session=session):
        raise ValueError(f"an account named {name!r} already exists")
    if oidc_subject and find_oidc_account(oidc_subject, session=session):
        raise ValueError(f"the OIDC subject {oidc_subject!r} already has an account")
    reviewer = Reviewer(name=name, role=ReviewerRole(role), oidc_subject=oidc_subject or None,
                        password_hash=hash_password(password) if password is not None else None)
    session.add(reviewer)
    session.flush()
    _audit(actor, reviewer, "create", None, session=session)
    session.flush()
    return reviewer


def set_role(name: str, role: ReviewerRole, *, actor: Actor, session: Session) -> Reviewer:
    authorize(actor, Permission.manage_accounts, session=session)
    reviewer = _account(name, session=session)
    before = reviewer_snapshot(reviewer)
    reviewer.role = ReviewerRole(role)
    session.add(reviewer)
    session.flush()
    _audit(actor, reviewer, "set-role", before, session=session)
    return reviewer


def disable_account(name: str, *, actor: Actor, session: Session,
                    disabled: bool = True) -> Reviewer:
    """Disable (or re-enable) an account: it can no longer sign in or write; history stays."""
    authorize(actor, Permission.manage_accounts, session=session)
    reviewer = _account(name, session=session)
    if actor.id is not None and reviewer.id == actor.id and disabled:
        raise ValueError("an admin cannot disable their own account")
    before = reviewer_snapshot(reviewer)
    reviewer.disabled = disabled
    session.add(reviewer)
    session.flush()
    _audit(actor, reviewer, "disable" if disabled else "enable", before, session=session)
    return reviewer


def set_password(name: str, password: str, *, actor: Actor, session: Session) -> Reviewer:
    """An admin sets anyone's password; everyone else only their own."""
    reviewer = _account(name, session=session)
    if actor is None or actor.id != reviewer.id:
        authorize(actor, Permission.manage_accounts, session=session)
    before = reviewer_snapshot(reviewer)
    reviewer.password_hash = hash_password(password)
    session.add(reviewer)
    session.flush()
    _audit(actor, reviewer, "password", before, session=session)
    return reviewer


def authenticate(name: str, password: str, *, session: Session) -> Actor | None:
    """The actor for a correct (name, password) of an enabled local account, else None."""
    reviewer = get_account(name, session=session)
    stored = reviewer.password_hash if reviewer is not None else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if reviewer is None or stored is None or reviewer.disabled:
        return None
    if _HASHER.check_needs_rehash(stored):  # parameters raised since it was set
        reviewer.password_hash = _HASHER.hash(password)
        session.add(reviewer)
    return actor_of(reviewer)


def find_oidc_account(subject: str, *, session: Session) -> Reviewer | None:
    return session.exec(select(Reviewer).where(Reviewer.oidc_subject == subject)).first()
