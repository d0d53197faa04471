# SPDX-License-Identifier: GPL-3.0-or-later
"""The sign-in through an identity provider on a scripted app and provider: the tenant's own client id and redirect
URI, the whole authorization-code flow through nginx, and a session that works on an API call."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from ansible_collections.pinned.release.plugins.module_utils._checks import check_problems, run_checks
from ansible_collections.pinned.release.plugins.module_utils._http import Response

PROVIDER = "http://10.0.0.1:9400"
DOMAIN = "acme.lab"
TOKEN = "eyJ.session-token-of-the-check-user"


class Flow:
    """The app behind nginx (base http://127.0.0.1:80) and a provider that signs in whoever its form names."""

    def __init__(self, client_id="acme-client", redirect_host=DOMAIN, provider_error=None, callback=None,
                 location=None, code_to=None, scheme="http", oauth=True):  # fmt: skip
        self.client_id, self.redirect_host = client_id, redirect_host
        self.provider_error, self.callback = provider_error, callback
        self.location, self.code_to, self.scheme, self.oauth = location, code_to, scheme, oauth
        self.sent = []

    def __call__(self, method, url, headers=None, body=None, timeout=10.0, server_name=None):
        self.sent.append((method, url, dict(headers or {}), body))
        parts = urllib.parse.urlsplit(url)
        if url.startswith(PROVIDER) and method == "POST":
            redirect = urllib.parse.parse_qs(parts.query)["redirect_uri"][0]
            if self.provider_error:
                return Response(status=302, headers={"location": f"{redirect}?error={self.provider_error}"})
            sub = urllib.parse.parse_qs(body.decode())["sub"][0]
            return Response(
                status=302, headers={"location": f"{self.code_to or redirect}?code=code-for-{sub}&state=s1"}
            )
        if parts.path == "/oauth/oidc/login":
            if not self.oauth:
                return Response(status=404)
            query = urllib.parse.urlencode({"response_type": "code", "client_id": self.client_id, "state": "s1",
                                            "redirect_uri": f"{self.scheme}://{self.redirect_host}/oauth/oidc/callback"})  # fmt: skip
            return Response(status=302, headers={"location": self.location or f"{PROVIDER}/oauth2/authorize?{query}"},
                            cookies={"oui-session": "session-with-state"})  # fmt: skip
        if parts.path == "/oauth/oidc/callback":
            if self.callback:
                return self.callback
            assert headers["Cookie"] == "oui-session=session-with-state", "the app's session cookie comes back"
            assert headers["Host"] == DOMAIN
            return Response(status=307, headers={"location": f"http://{DOMAIN}/auth"}, cookies={"token": TOKEN})
        if parts.path == "/api/v1/auths/":
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return Response(status=401, body=b'{"detail": "Not authenticated"}')
            return Response(status=200, headers={"content-type": "application/json"},
                            body=json.dumps({"email": "oidc-check@pinned-release.invalid", "id": "u-7"}).encode())  # fmt: skip
        return Response(status=404)


TENANT_VALUES = {"OAUTH_CLIENT_ID": "acme-client", "OAUTH_CLIENT_SECRET": "s3cret-acme"}
REDIRECT_ONLY = {"name": "sign-in redirect", "oidc": {}}
FULL = {"name": "sign-in", "oidc": {"subject": "oidc-check@pinned-release.invalid"}, "path": "/api/v1/auths/",
        "json": {"email": "oidc-check@pinned-release.invalid"}, "save": {"oidc_user_id": "id"}}  # fmt: skip


@pytest.mark.parametrize(
    ("check", "flow", "values", "passed", "detail"),
    [
        (REDIRECT_ONLY, Flow(oauth=False), {}, True, "skipped: the tenant has no OAUTH_CLIENT_ID"),
        # one client id in release_app.env is every tenant's: the tenant declares none, the app still redirects
        (
            REDIRECT_ONLY,
            Flow(),
            {},
            False,
            "the login redirects with client id 'acme-client', but the tenant declares no OAUTH_CLIENT_ID",
        ),
        (
            REDIRECT_ONLY,
            Flow(redirect_host="acme.lab:3001"),
            TENANT_VALUES,
            False,
            "redirect URI 'http://acme.lab:3001/oauth/oidc/callback' is not <scheme>://acme.lab/oauth/oidc/callback",
        ),
        (
            REDIRECT_ONLY,
            Flow(location=f"{PROVIDER}/authorize?client_id=globex-client&client_id=acme-client"),
            TENANT_VALUES,
            False,
            "is not a URL one can follow (has client_id 2 times)",
        ),
        (
            REDIRECT_ONLY,
            Flow(location="http://[idp.lab/authorize"),
            TENANT_VALUES,
            False,
            "is not a URL one can follow",
        ),
        (
            FULL,
            Flow(code_to="http://globex.lab/oauth/oidc/callback"),
            TENANT_VALUES,
            False,
            "the provider sent the code to http://globex.lab/oauth/oidc/callback, not to the redirect URI the tenant asked",
        ),
        (
            REDIRECT_ONLY,
            Flow(),
            TENANT_VALUES,
            True,
            "the login redirects to 10.0.0.1:9400 with the tenant's client id and a redirect URI on acme.lab",
        ),
        (
            REDIRECT_ONLY,
            Flow(client_id="globex-client"),
            TENANT_VALUES,
            False,
            "the login redirect names client id 'globex-client', not the tenant's own OAUTH_CLIENT_ID ('acme-client')",
        ),
        (
            REDIRECT_ONLY,
            Flow(redirect_host="globex.lab"),
            TENANT_VALUES,
            False,
            "redirect URI 'http://globex.lab/oauth/oidc/callback' is not <scheme>://acme.lab/oauth/oidc/callback",
        ),
        (
            {"name": "x", "oidc": {"login_path": "/nowhere"}},
            Flow(),
            TENANT_VALUES,
            False,
            "/nowhere did not redirect to the provider (HTTP 404)",
        ),
        (
            FULL,
            Flow(),
            TENANT_VALUES,
            True,
            "oidc-check@pinned-release.invalid signed in through 10.0.0.1:9400; HTTP 200",
        ),
        (FULL, Flow(provider_error="access_denied"), TENANT_VALUES, False, "the provider refused: access_denied"),
        (
            FULL,
            Flow(callback=Response(status=307, headers={"location": "http://acme.lab/auth?error=Email+taken"})),
            TENANT_VALUES,
            False,
            "the tenant's callback did not sign oidc-check@pinned-release.invalid in (Email taken)",
        ),
        (
            FULL,
            Flow(callback=Response(status=307, headers={"location": "http://acme.lab/auth?pending=1"})),
            TENANT_VALUES,
            False,
            "the user is pending an admin's approval (DEFAULT_USER_ROLE)",
        ),
    ],
)
def test_sign_in_through_the_tenants_identity_provider(check, flow, values, passed, detail):
    outcomes, saved = run_checks([check], "http://127.0.0.1:80", host_header=DOMAIN, send=flow, tenant_values=values)
    (outcome,) = outcomes
    assert outcome["passed"] is passed, outcome
    assert detail in outcome["detail"], outcome["detail"]
    assert TOKEN not in json.dumps(outcomes), "the session token is never in a result"
    if passed and check is FULL:
        assert saved["oidc_user_id"] == "u-7", "the user's id is kept, for the check after the upgrade"


def test_a_provider_on_the_tenants_own_domain_is_reached_through_nginx_and_a_tls_tenants_redirect_must_be_https():
    query = urllib.parse.urlencode({"client_id": "acme-client", "redirect_uri": "http://acme.lab/oauth/oidc/callback"})
    flow = Flow(location=f"/idp/authorize?{query}")  # relative: the provider under the tenant's own domain
    outcomes, _saved = run_checks([REDIRECT_ONLY], "http://127.0.0.1:80", host_header=DOMAIN, send=flow,
                                  tenant_values=TENANT_VALUES)  # fmt: skip
    assert outcomes[0]["passed"], outcomes
    assert "redirects to acme.lab" in outcomes[0]["detail"]
    tls, _saved = run_checks([REDIRECT_ONLY], "https://127.0.0.1:443", host_header=DOMAIN, server_name=DOMAIN,
                             send=Flow(), tenant_values=TENANT_VALUES)  # fmt: skip
    assert tls[0]["passed"] is False
    assert "is not https://acme.lab/oauth/oidc/callback" in tls[0]["detail"]


def test_without_a_subject_nothing_reaches_the_provider():
    flow = Flow()
    run_checks([REDIRECT_ONLY], "http://127.0.0.1:80", host_header=DOMAIN, send=flow, tenant_values=TENANT_VALUES)
    assert [url for _m, url, _h, _b in flow.sent] == ["http://127.0.0.1:80/oauth/oidc/login"], "Google is never asked"


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        (REDIRECT_ONLY, None),
        (FULL, None),
        ({"name": "x", "oidc": {}, "path": "/api/v1/auths/"}, "an oidc check without a subject only judges the login"),
        ({"name": "x", "oidc": {}, "restart": True, "json": {"a": 1}}, "so json, restart has no use"),
        ({"name": "x", "oidc": {}, "skip_without": ["oidc_user_id"], "enabled": True}, None),
        ({"name": "x", "oidc": {"subject": "u@x.invalid"}}, "path must start with /"),
        ({"name": "x", "oidc": {"provider": "google"}}, "oidc has unknown key 'provider'"),
        ({"name": "x", "oidc": {"client_id_from": "client id"}}, "oidc.client_id_from must be"),
        ({"name": "x", "oidc": {"login_path": "oauth/login"}}, "oidc.login_path must be"),
        ({"name": "x", "oidc": "yes"}, "oidc must be a mapping"),
    ],
)
def test_oidc_check_problems(check, problem):
    problems = check_problems([check], container_checks=True)
    assert problems == [] if problem is None else any(problem in p for p in problems), problems
