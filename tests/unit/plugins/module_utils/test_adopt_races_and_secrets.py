# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption when a named container disappears between the listing and its inspect."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._adopt import AdoptionError, AdoptionQuery, adoption_facts

from .fake_host import REPO, V1, Clock, FakeEngine


def test_a_named_container_removed_after_the_listing_is_not_silently_dropped(tmp_path):
    engine = FakeEngine(Clock())
    (tmp_path / "acme").mkdir()
    engine.run_by_hand("legacy-acme", V1, str(tmp_path / "acme"), 3001, {"WEBUI_SECRET_KEY": "k-acme"})
    real_listing = engine.listing

    def listing_then_removed():
        found = real_listing()
        engine.containers.clear()  # docker rm between the listing and the inspect
        return found

    engine.listing = listing_then_removed
    with pytest.raises(AdoptionError, match=r"^container legacy-acme was removed while this host was read"):
        adoption_facts(engine, AdoptionQuery(repository=REPO, names=("legacy-acme",)), {})


@pytest.mark.parametrize(
    "entry",
    [
        "SMTP_PASS=hunter2-long-password",
        "SENTRY_DSN=https://0123456789abcdef@o1.ingest.sentry.io/42",
        "DB_PWD=hunter2-long-password",
    ],
)
def test_common_secret_shapes_are_not_written_as_plain_env(entry):
    from ansible_collections.pinned.release.plugins.module_utils._adopt import split_env

    plain, _secret = split_env([entry], [])
    assert not plain, f"{entry.split('=')[0]} would be written in clear into host_vars release_tenants.yml"
