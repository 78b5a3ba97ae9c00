"""Sign-in: OIDC through ``st.login`` when ``.streamlit/secrets.toml`` configures a provider,
otherwise local accounts (``python -m db reviewers add``) with an argon2-checked password.

Staying signed in across a reload (local accounts): at sign-in the app sets a cookie holding a
signed, expiring token (HMAC-SHA256 over account id, expiry and a fingerprint of the account's
password hash, so a password change ends old sessions). A new browser session reads it back
from ``st.context.cookies`` (read-only in Streamlit, hence a one-line script writes it, through
``st.html(..., unsafe_allow_javascript=True)``) and is signed in again while the token is valid
and the account enabled. Why a cookie and not ``st.query_params``: a token in the URL would be
copied with every shared link, bookmarked and logged. The cookie is SameSite=Strict and expires
with the token (``SESSION_HOURS``); being set from script it is not HttpOnly, which is why
report text is always rendered escaped. OIDC sessions use Streamlit's own identity cookie.

The signed-in account's id lives in ``st.session_state[state.KEY_REVIEWER]``; every run turns it
into a fresh ``Actor`` (a disabled account is signed out at once) and the db write functions
check the role again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

import streamlit as st

from curation_app import state
from db import queries
from db.models import Reviewer, ReviewerRole
from db.queries import Actor, Permission  # noqa: F401  (Permission: for streamlit_app)

COOKIE = "medfilip_session"
SESSION_HOURS = 12
KEY_SIGNED_OUT = "auth_signed_out"  # this browser session signed out: ignore its old cookie
KEY_LOGIN_ERROR = "auth_login_error"
KEY_SET_COOKIE = "auth_set_cookie"  # a token to write as the cookie on the next run


# --- tokens ----------------------------------------------------------------------------------


def _secret() -> bytes:
    """MEDFILIP_SESSION_SECRET, else a random secret kept in the data dir (created once)."""
    if env := os.environ.get("MEDFILIP_SESSION_SECRET"):
        return env.encode()
    path = state.settings().data_dir / ".session_secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _fingerprint(r: Reviewer) -> str:
    return hashlib.sha256((r.password_hash or r.oidc_subject or "").encode()).hexdigest()[:16]


def make_token(r: Reviewer, *, now: float | None = None) -> str:
    body = json.dumps({"id": r.id, "exp": int((now or time.time()) + SESSION_HOURS * 3600),
                       "fp": _fingerprint(r)}, separators=(",", ":")).encode()
    sig = hmac.new(_secret(), body, hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + sig


def read_token(token: str, session) -> Reviewer | None:
    """The enabled account a valid, unexpired token names; None for anything else."""
    try:
        b64, sig = token.split(".")
        body = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        claims = json.loads(body)
        good = hmac.compare_digest(sig, hmac.new(_secret(), body, hashlib.sha256).hexdigest())
        if not good or claims["exp"] < time.time():
            return None
        r = session.get(Reviewer, int(claims["id"]))
    except (ValueError, KeyError, TypeError):
        return None
    return r if r is not None and not r.disabled and claims["fp"] == _fingerprint(r) else None


def _write_cookie(token: str | None) -> None:
    value, age = (token, SESSION_HOURS * 3600) if token else ("", 0)
    st.html(f"<script>document.cookie = '{COOKIE}={value}; path=/; max-age={age}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


# --- who is signed in ------------------------------------------------------------------------


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return False


def _oidc_signed_in() -> bool:
    return bool(st.user.get("is_logged_in", False))


def _oidc_account(session) -> Reviewer | None:
    if not _oidc_signed_in():
        return None
    for subject in (st.user.get("sub"), st.user.get("email")):
        if subject and (r := queries.find_oidc_account(str(subject), session=session)):
            return r
    return None


def current_actor() -> Actor | None:
    """The signed-in account as an Actor (None: nobody, or the account was disabled)."""
    with state.db_session() as session:
        reviewer_id = st.session_state.get(state.KEY_REVIEWER)
        r = session.get(Reviewer, reviewer_id) if reviewer_id is not None else None
        if r is None and not st.session_state.get(KEY_SIGNED_OUT):
            if oidc_configured():
                r = _oidc_account(session)
            elif token := st.context.cookies.get(COOKIE):
                r = read_token(token, session)
        if r is None or r.disabled:
            st.session_state.pop(state.KEY_REVIEWER, None)
            return None
        st.session_state[state.KEY_REVIEWER] = r.id
        return queries.actor_of(r)


def _sign_in() -> None:
    name = st.session_state.get("login_name", "")
    password = st.session_state.get("login_password", "")
    with state.db_write() as session:
        actor = queries.authenticate(name, password, session=session)
        token = make_token(session.get(Reviewer, actor.id)) if actor else None
    if actor is None:
        st.session_state[KEY_LOGIN_ERROR] = "Unknown name or wrong password (or the account " \
                                            "is disabled)."
        return
    st.session_state[state.KEY_REVIEWER] = actor.id
    st.session_state[KEY_SET_COOKIE] = token
    st.session_state.pop(KEY_SIGNED_OUT, None)
    st.session_state["login_password"] = ""


def sign_out() -> None:
    for key in [k for k in st.session_state if k != KEY_SIGNED_OUT]:
        del st.session_state[key]
    st.session_state[KEY_SIGNED_OUT] = True
    st.session_state[KEY_SET_COOKIE] = ""  # expire the cookie on the next run
    if oidc_configured() and _oidc_signed_in():
        st.logout()


def sign_in_page() -> None:
    """The page shown to nobody-signed-in: the OIDC button or the local form."""
    st.title("Sign in")
    st.caption("MedFILIP Curation Studio: review of machine-extracted chest X-ray labels.")
    if oidc_configured():
        if _oidc_signed_in():
            st.error(f"No account is registered for {st.user.get('email') or 'you'}. Ask an "
                     "admin to run `python -m db reviewers add NAME --oidc-subject "
                     f"{st.user.get('sub') or st.user.get('email')}`.")
            st.button("Sign out", on_click=st.logout, key="oidc_logout")
        else:
            st.button("Sign in with your organisation", on_click=st.login, type="primary",
                      key="oidc_login")
        return
    with st.form("login_form", border=True, width=420):
        st.text_input("Name", key="login_name")
        st.text_input("Password", type="password", key="login_password")
        st.form_submit_button("Sign in", type="primary", on_click=_sign_in, key="login")
    if error := st.session_state.pop(KEY_LOGIN_ERROR, None):
        st.error(error)
    st.caption("Accounts are created by an admin (`python -m db reviewers add NAME --role "
               "reviewer`).")


def sidebar(actor: Actor) -> None:
    """Who you are, and a sign-out (rendered by streamlit_app.py on every page)."""
    if (token := st.session_state.pop(KEY_SET_COOKIE, None)) is not None:
        _write_cookie(token or None)
    st.markdown(f"Signed in as **{actor.name}** · {ReviewerRole(actor.role).value}")
    st.button("Sign out", key="sign_out", on_click=sign_out, icon=":material/logout:")


def flush_cookie() -> None:
    """Write a pending cookie change on a run where the sidebar is not drawn (sign-out)."""
    if (token := st.session_state.pop(KEY_SET_COOKIE, None)) is not None:
        _write_cookie(token or None)
