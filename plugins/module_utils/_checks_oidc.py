# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The checklist's sign-in through an identity provider (OpenID Connect), per tenant.

The per-tenant settings are what a copy-pasted ``docker run`` gets wrong: the login redirect must name the tenant's own
client id and a redirect URI on the tenant's own domain. That much is judged from the app's first answer alone, so it
applies to any provider (Google included) without reaching it. With a ``subject``, the whole authorization-code flow
runs through nginx against a test provider that signs that subject in from a form (``sub``, as oidc-provider-mock
does): the provider's code goes back to the tenant's callback with the app's session cookie, the app exchanges it
server-side, and the session it sets must work on an API call (the check's own ``path``).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Callable, Optional

OIDC_KEYS = {
    "login_path": "the app's login path, e.g. /oauth/oidc/login",
    "redirect_path": "the callback path the redirect URI must have, e.g. /oauth/oidc/callback",
    "client_id_from": "the tenant's variable (env or secrets) holding its client id, e.g. OAUTH_CLIENT_ID",
    "subject": "the user a test provider signs in (its form's sub field), e.g. oidc-check@example.invalid",
}
DEFAULTS = {
    "login_path": "/oauth/oidc/login",
    "redirect_path": "/oauth/oidc/callback",
    "client_id_from": "OAUTH_CLIENT_ID",
}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDIRECTS = (301, 302, 303, 307, 308)


def oidc_problems(spec: object, label: str) -> list:
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [f"{label}: oidc must be a mapping ({', '.join(sorted(OIDC_KEYS))}), got {spec!r}"]
    problems = [f"{label}: oidc has unknown key {key!r}; known: {', '.join(sorted(OIDC_KEYS))}"
                for key in sorted(set(spec) - set(OIDC_KEYS))]  # fmt: skip
    for key in ("login_path", "redirect_path"):
        value = spec.get(key, DEFAULTS[key])
        if not isinstance(value, str) or not value.startswith("/"):
            problems.append(f"{label}: oidc.{key} must be {OIDC_KEYS[key]}, got {value!r}")
    if not isinstance(spec.get("client_id_from", DEFAULTS["client_id_from"]), str) or not NAME_RE.fullmatch(
        spec.get("client_id_from", DEFAULTS["client_id_from"])
    ):
        problems.append(f"{label}: oidc.client_id_from must be {OIDC_KEYS['client_id_from']}, "
                        f"got {spec.get('client_id_from')!r}")  # fmt: skip
    if spec.get("subject") is not None and (not isinstance(spec["subject"], str) or not spec["subject"].strip()):
        problems.append(f"{label}: oidc.subject must be {OIDC_KEYS['subject']}, got {spec['subject']!r}")
    return problems


def _query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def sign_in(spec: dict, base_url: str, domain: str, server_name: Optional[str], tenant_values: dict,
            send: Callable) -> tuple:  # fmt: skip
    """``(failure detail or None, detail, session token or None)`` of the login redirect and, with a subject, the
    whole flow. ``tenant_values``: the tenant's declared env and secrets (its client id is read there)."""
    settings = {**DEFAULTS, **spec}
    expected = tenant_values.get(settings["client_id_from"])
    if not expected:
        return None, f"skipped: the tenant has no {settings['client_id_from']} (no sign-in through a provider)", None
    host = {"Host": domain}
    login = send("GET", base_url + settings["login_path"], headers=host, body=None, timeout=30, server_name=server_name)
    if login.status not in REDIRECTS or not login.headers.get("location"):
        got = f"no answer: {login.error}" if login.status == -1 else f"HTTP {login.status}"
        return f"{settings['login_path']} did not redirect to the provider ({got})", "", None
    authorize = login.headers["location"]
    asked = _query(authorize)
    if asked.get("client_id") != expected:
        return (f"the login redirect names client id {asked.get('client_id')!r}, not the tenant's own "
                f"{settings['client_id_from']} ({expected!r})"), "", None  # fmt: skip
    redirect = urllib.parse.urlsplit(asked.get("redirect_uri", ""))
    if redirect.hostname != domain or redirect.path != settings["redirect_path"]:
        return (f"the login redirect's redirect URI {asked.get('redirect_uri')!r} is not "
                f"<scheme>://{domain}{settings['redirect_path']} (WEBUI_URL or OPENID_REDIRECT_URI names another "
                "domain?)"), "", None  # fmt: skip
    provider = urllib.parse.urlsplit(authorize).netloc
    detail = f"the login redirects to {provider} with the tenant's client id and a redirect URI on {domain}"
    if not settings.get("subject"):
        return None, detail, None
    cookies = dict(login.cookies)
    consent = send("POST", authorize, headers={"Content-Type": "application/x-www-form-urlencoded"},
                   body=urllib.parse.urlencode({"sub": settings["subject"]}).encode(), timeout=30, server_name=None)  # fmt: skip
    back = consent.headers.get("location", "")
    if consent.status not in REDIRECTS or not back:
        got = f"no answer: {consent.error}" if consent.status == -1 else f"HTTP {consent.status}"
        return f"the provider at {provider} did not sign {settings['subject']} in ({got})", detail, None
    if _query(back).get("error"):
        return (
            f"the provider refused: {_query(back)['error']} ({_query(back).get('error_description', '')})",
            detail,
            None,
        )
    callback = urllib.parse.urlsplit(back)
    path = callback.path + (f"?{callback.query}" if callback.query else "")
    headers = dict(host, Cookie="; ".join(f"{k}={v}" for k, v in cookies.items()))
    landed = send("GET", base_url + path, headers=headers, body=None, timeout=60, server_name=server_name)
    token = landed.cookies.get("token")
    if landed.status not in REDIRECTS or not token:
        where = landed.headers.get("location", "")
        why = _query(where).get("error") or ("the user is pending an admin's approval (DEFAULT_USER_ROLE)"
                                             if "pending=1" in where else None)  # fmt: skip
        got = f"no answer: {landed.error}" if landed.status == -1 else f"HTTP {landed.status}"
        return f"the tenant's callback did not sign {settings['subject']} in ({why or got})", detail, None
    return None, f"{detail}; {settings['subject']} signed in through {provider}", token
