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


def _once(url: str, names: tuple) -> dict:
    """``{name: value}`` of query parameters that must appear exactly once (a provider reads one of two; which, is
    its own business): ValueError naming the first that does not."""
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    for name in names:
        if len(found.get(name, [])) > 1:
            raise ValueError(f"has {name} {len(found[name])} times")
    return {name: found[name][0] for name in names if found.get(name)}


def _route(url: str, base_url: str, domain: str, server_name: Optional[str]) -> tuple:
    """``(URL to send to, extra headers, TLS server name)``: the tenant's own domain through nginx (its Host header),
    anything else as it is (the provider)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname == domain:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return base_url + path, {"Host": domain}, server_name
    return url, {}, None


def _status(answer) -> str:
    return f"no answer: {answer.error}" if answer.status == -1 else f"HTTP {answer.status}"


def sign_in(spec: dict, base_url: str, domain: str, server_name: Optional[str], tenant_values: dict,
            send: Callable) -> tuple:  # fmt: skip
    """``(failure detail or None, detail, session token or None)`` of the login redirect and, with a subject, the
    whole flow. ``tenant_values``: the tenant's declared env and secrets (its client id is read there);
    ``server_name`` set: the tenant is served over HTTPS, so its redirect URI must be https too."""
    settings = {**DEFAULTS, **spec}
    expected = tenant_values.get(settings["client_id_from"])
    public = f"{'https' if server_name else 'http'}://{domain}"
    login = send("GET", base_url + settings["login_path"], headers={"Host": domain}, body=None, timeout=30,
                 server_name=server_name)  # fmt: skip
    location = login.headers.get("location") if login.status in REDIRECTS else None
    try:
        authorize = urllib.parse.urljoin(public + settings["login_path"], location) if location else None
        asked = _once(authorize, ("client_id", "redirect_uri")) if authorize else {}
    except ValueError as exc:
        return f"the login redirect's Location {location!r} is not a URL one can follow ({exc})", "", None
    if not expected:
        if asked.get("client_id"):
            return (f"the login redirects with client id {asked['client_id']!r}, but the tenant declares no "
                    f"{settings['client_id_from']} (one in release_app.env is every tenant's: give each tenant its "
                    "own)"), "", None  # fmt: skip
        return None, f"skipped: the tenant has no {settings['client_id_from']} (no sign-in through a provider)", None
    if not authorize:
        return f"{settings['login_path']} did not redirect to the provider ({_status(login)})", "", None
    if asked.get("client_id") != expected:
        return (f"the login redirect names client id {asked.get('client_id')!r}, not the tenant's own "
                f"{settings['client_id_from']} ({expected!r})"), "", None  # fmt: skip
    redirect_uri = asked.get("redirect_uri", "")
    redirect = urllib.parse.urlsplit(redirect_uri)
    schemes = ("https",) if server_name else ("http", "https")  # behind another TLS end, http cannot be told wrong
    if (redirect.hostname != domain or redirect.path != settings["redirect_path"] or redirect.scheme not in schemes
            or redirect.port is not None):  # fmt: skip
        return (f"the login redirect's redirect URI {redirect_uri!r} is not {'https' if server_name else '<scheme>'}"
                f"://{domain}{settings['redirect_path']} (WEBUI_URL or OPENID_REDIRECT_URI names another domain, "
                "port or scheme?)"), "", None  # fmt: skip
    provider = urllib.parse.urlsplit(authorize).netloc
    detail = f"the login redirects to {provider} with the tenant's client id and a redirect URI on {domain}"
    if not settings.get("subject"):
        return None, detail, None
    url, headers, name = _route(authorize, base_url, domain, server_name)
    consent = send("POST", url, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                   body=urllib.parse.urlencode({"sub": settings["subject"]}).encode(), timeout=30, server_name=name)  # fmt: skip
    back = consent.headers.get("location", "") if consent.status in REDIRECTS else ""
    if not back:
        return f"the provider at {provider} did not sign {settings['subject']} in ({_status(consent)})", detail, None
    try:
        back = urllib.parse.urljoin(authorize, back)
        returned = _once(back, ("error", "error_description"))
    except ValueError as exc:
        return f"the provider's redirect {back!r} is not a URL one can follow ({exc})", detail, None
    if returned.get("error"):
        return f"the provider refused: {returned['error']} ({returned.get('error_description', '')})", detail, None
    landing = urllib.parse.urlsplit(back)
    if (landing.scheme, landing.hostname, landing.port, landing.path) != (
            redirect.scheme, redirect.hostname, redirect.port, redirect.path):  # fmt: skip
        return (f"the provider sent the code to {landing.scheme}://{landing.netloc}{landing.path}, not to the redirect "
                f"URI the tenant asked for ({redirect_uri})"), detail, None  # fmt: skip
    url, headers, name = _route(back, base_url, domain, server_name)
    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
    landed = send("GET", url, headers=headers, body=None, timeout=60, server_name=name)
    token = landed.cookies.get("token")
    if landed.status not in REDIRECTS or not token:
        where = landed.headers.get("location", "")
        try:
            error = _once(where, ("error",)).get("error")
        except ValueError:
            error = None
        why = error or ("the user is pending an admin's approval (DEFAULT_USER_ROLE)" if "pending=1" in where
                        else "a second factor is asked for (MFA)" if "mfa=1" in where else None)  # fmt: skip
        return f"the tenant's callback did not sign {settings['subject']} in ({why or _status(landed)})", detail, None
    return None, f"{detail}; {settings['subject']} signed in through {provider}", token
