# SPDX-License-Identifier: GPL-3.0-or-later
"""Release_app overrides and odd profile paths."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import AppProfileError, resolve


def test_a_misspelt_release_app_key_is_refused():
    # the profile refuses unknown keys; release_app merged over it took any typo silently (memory not applied)
    with pytest.raises(AppProfileError, match=r"^release_app sets memroy, which no app profile knows: use one of "):
        resolve("open-webui", {"memroy": "512m"})


def test_a_profile_path_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(AppProfileError) as caught:
        resolve(str(tmp_path))
    assert "does not exist" not in str(caught.value), str(caught.value)
