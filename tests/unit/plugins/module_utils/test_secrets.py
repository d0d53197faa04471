# SPDX-License-Identifier: GPL-3.0-or-later
"""Secrets are masked by exact value in fields, inside free text only where text is free, and never in an invocation."""

from __future__ import annotations

from ansible_collections.pinned.release.plugins.module_utils._secrets import (
    NO_LOG_MARK,
    SECRET_MASK,
    SecretMask,
    finish,
    sanitized_invocation,
)

DIGEST = "sha256:" + "ab12" * 16


def test_a_short_secret_does_not_garble_other_fields():
    mask = SecretMask(["ab12", "s3cr3t-value"])
    result = mask.apply({"digest": DIGEST, "env": {"KEY": "s3cr3t-value", "NAME": "ab12x"}, "msg": "key ab12 leaked"})
    assert result["digest"] == DIGEST, "a value that merely contains a secret is left whole"
    assert result["env"] == {"KEY": SECRET_MASK, "NAME": "ab12x"}
    assert result["msg"] == f"key {SECRET_MASK} leaked", "free text has the secret cut out"


def test_log_lines_with_a_secret_are_dropped():
    mask = SecretMask(["s3cr3t"])
    assert mask.lines("a\nkey=s3cr3t\nb\nc", limit=2) == ["b", "c"]
    text = "\n".join([f"line {n}" for n in range(30)] + ["key=s3cr3t loaded", "done"])
    assert mask.lines(text, limit=5) == ["line 26", "line 27", "line 28", "line 29", "done"], "the tail, secret dropped"


def test_the_invocation_marks_every_no_log_option_also_inside_suboptions():
    spec = {
        "tenants": {"type": "list", "elements": "dict", "options": {"name": {}, "secrets": {"no_log": True}}},
        "password": {"no_log": True},
        "nginx": {"type": "dict", "options": {"site_dir": {}}},
    }
    params = {"tenants": [{"name": "a", "secrets": {"K": "v"}}, {"name": "b", "secrets": None}], "password": "p",
              "nginx": {"site_dir": "/etc"}}  # fmt: skip
    clean = sanitized_invocation(params, spec)
    assert clean["tenants"] == [{"name": "a", "secrets": NO_LOG_MARK}, {"name": "b", "secrets": None}]
    assert clean["password"] == NO_LOG_MARK
    assert clean["nginx"] == {"site_dir": "/etc"}
    assert params["tenants"][0]["secrets"] == {"K": "v"}, "the module's own parameters are untouched"


def test_finish_stops_ansibles_substring_masking_after_masking_itself():
    class Module:
        def __init__(self) -> None:
            self.params = {"secret": "ab12", "name": "x"}
            self.argument_spec = {"secret": {"no_log": True}, "name": {}}
            self.no_log_values = {"ab12", "other"}

    module = Module()
    result = finish(module, {"digest": DIGEST, "value": "ab12"}, SecretMask(["ab12"]))
    assert result["digest"] == DIGEST
    assert result["value"] == SECRET_MASK
    assert result["invocation"] == {"module_args": {"secret": NO_LOG_MARK, "name": "x"}}
    assert module.no_log_values == {"other"}
