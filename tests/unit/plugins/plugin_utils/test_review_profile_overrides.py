"""Hostile review: release_app overrides and odd profile paths."""
from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.filter.tenants import problems as tenant_problems
from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import AppProfileError, resolve


def test_review_a_misspelt_release_app_key_is_refused():
    # the profile refuses unknown keys; release_app merged over it takes any typo silently (memory not applied)
    # (the role's preflight: tenant_tenants | tenant_problems(_tenant_app, tenant_image, settings))
    runtime = resolve("open-webui", {"memroy": "512m"})["runtime"]
    tenants = [{"name": "acme", "domain": "acme.example", "port": 3001,
                "secrets": {"WEBUI_SECRET_KEY": "key-of-acme-0123456789"}}]
    found = tenant_problems(tenants, runtime, "ghcr.io/open-webui/open-webui@sha256:" + "1" * 64)
    assert any("memroy" in p for p in found), f"release_app.memroy accepted silently: {found}"


def test_review_a_profile_path_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(AppProfileError) as caught:
        resolve(str(tmp_path))
    assert "does not exist" not in str(caught.value), str(caught.value)
