# SPDX-License-Identifier: GPL-3.0-or-later
"""App profile loading."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils import _app_profiles
from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import AppProfileError


def test_recursive_yaml_alias_is_one_line_not_a_traceback(tmp_path):
    path = tmp_path / "loop.yml"
    path.write_text((_app_profiles.PROFILES_DIR / "generic-http.yml").read_text() + "\nextra: &x [*x]\n")
    with pytest.raises(AppProfileError):
        _app_profiles.load(str(path))


def test_alias_bomb_is_refused_quickly(tmp_path):
    # billion laughs: 9 levels of 9 aliases -> 9**9 strings walked by _jinja
    lines = ['l0: &l0 ["x"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    import signal

    def _alarm(*_):
        raise TimeoutError("profile check still walking the alias bomb after 10s")

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        with pytest.raises(AppProfileError):
            _app_profiles.load(str(path))
    finally:
        signal.alarm(0)
