# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._pins import (
    HEADER,
    PinError,
    check_evidence,
    check_target,
    load_pin_file,
    plan_pin,
    render_markdown,
    render_pin_file,
    rewrite_references,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference

REPO = "ghcr.io/acme/open-webui"
A, B, C = ("sha256:" + ch * 64 for ch in "abc")
REF_A, REF_B = parse_pinned_reference(f"{REPO}:release@{A}"), parse_pinned_reference(f"{REPO}@{B}")


def pin_of(ref, when="2026-11-01T00:00:00Z", reason="r1"):
    return plan_pin(None, [], ref, reason=reason, now=when).pin


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("release_pin: [unclosed\n", "not valid YAML at line 2, column 1"),
        ("a: 1\n  b: 2\nc: :\n", "not valid YAML at line 2"),
        ("- just\n- a list\n", "expected a mapping"),
        ("release_pin: {}\nsomething_else: 1\n", "unexpected key(s) something_else"),
        ("release_pin: {image: x}\n", "needs at least image and digest"),
        (f"release_pin: {{image: '{REPO}:release', digest: '{A}'}}\n", "not pinned"),
        (f"release_pin: {{image: '{REPO}@{A}', digest: '{B}'}}\n", "disagrees with its digest"),
        ("release_pin_history: {a: 1}\n", "must be a list"),
    ],
)
def test_load_pin_file_rejects(text, message):
    with pytest.raises(PinError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_pin_file(text, "/x/release_pin.yml")
    assert "/x/release_pin.yml" in str(info.value)


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n", "---\n"])
def test_load_pin_file_empty(text):
    assert load_pin_file(text, "p") == (None, [])


def test_render_and_load_round_trip():
    pin = pin_of(REF_A)
    text = render_pin_file(pin, [])
    assert text.startswith(HEADER)
    assert load_pin_file(text, "p") == (pin, [])
    assert yaml.safe_load(text)["release_pin"]["image"] == f"{REPO}@{A}"


def test_plan_first_pin():
    plan = plan_pin(None, [], REF_A, reason="first", now="T1")
    assert plan.changed
    assert plan.pin == {
        "image": f"{REPO}@{A}",
        "repository": REPO,
        "digest": A,
        "tag": "release",
        "pinned_at": "T1",
        "reason": "first",
    }
    assert plan.history == []


def test_plan_same_digest_is_idempotent():
    pin = pin_of(REF_A)
    plan = plan_pin(pin, [], parse_pinned_reference(f"{REPO}:other@{A}"), reason=None, now="T2")
    assert (plan.changed, plan.pin, plan.history) == (False, pin, [])


def test_plan_moves_old_pin_into_history_newest_first():
    pin = pin_of(REF_A, "T1", "first")
    plan = plan_pin(pin, [{"image": f"{REPO}@{C}", "digest": C}], REF_B, reason="second", now="T2", forced=True)
    assert plan.pin["forced"] is True
    assert plan.history[0] == {
        "image": f"{REPO}@{A}",
        "digest": A,
        "tag": "release",
        "pinned_at": "T1",
        "unpinned_at": "T2",
        "reason": "first",
    }
    assert plan.history[1]["digest"] == C


def test_plan_rollback_to_older_digest_keeps_both_moves():
    first = plan_pin(None, [], REF_A, reason="v1", now="T1")
    second = plan_pin(first.pin, first.history, REF_B, reason="v2", now="T2")
    back = plan_pin(second.pin, second.history, REF_A, reason="rollback: v2 broke", now="T3")
    assert back.pin["digest"] == A
    assert [h["digest"] for h in back.history] == [B, A]


@pytest.mark.parametrize(("limit", "kept"), [(0, 0), (1, 1), (3, 3), (50, 6)])
def test_plan_history_limit(limit, kept):
    older = [{"image": f"{REPO}@{C}", "digest": C}] * 5
    plan = plan_pin(pin_of(REF_A), older, REF_B, reason="x", now="T", history_limit=limit)
    assert len(plan.history) == kept
    if kept:
        assert plan.history[0]["digest"] == A


@pytest.mark.parametrize(
    ("current", "ref", "reason", "forced", "message"),
    [
        (None, REF_A, None, False, "reason is required"),
        (None, REF_A, "  ", False, "reason is required"),
        ("other", REF_A, "move", False, "different repository"),
    ],
)
def test_plan_refuses(current, ref, reason, forced, message):
    pin = pin_of(parse_pinned_reference(f"ghcr.io/acme/other@{C}")) if current else None
    with pytest.raises(PinError, match=message):
        plan_pin(pin, [], ref, reason=reason, now="T", forced=forced)


def test_plan_repository_change_with_force():
    pin = pin_of(parse_pinned_reference(f"ghcr.io/acme/other@{C}"))
    assert plan_pin(pin, [], REF_A, reason="moved", now="T", forced=True).pin["repository"] == REPO


def record(digest=A, passed=True, checks=None):
    checks = checks if checks is not None else [{"name": "health", "passed": True}, {"name": "version", "passed": True}]
    return json.dumps(
        {
            "digest": digest,
            "passed": passed,
            "finished_at": "T",
            "operator": "ops",
            "hosts": {"test1": {"tenants": {"alpha": {"checks": checks}}}},
        }
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a test record"),
        (record(digest=B), f"is for {B}, not {A}"),
        (record(passed=False), "checklist failed"),
        (
            record(checks=[{"name": "health", "passed": True}, {"name": "sse", "passed": False}]),
            r"1 of 2 checks failed \(first: test1/alpha: sse\)",
        ),
        (record(checks=[]), "records no checks"),
    ],
)
def test_check_evidence_refuses(text, message):
    with pytest.raises(PinError, match=message):
        check_evidence(text, "ev.json", A)


@pytest.mark.parametrize(
    ("tested_from", "pinned_now", "refused"),
    [
        (A, A, False),  # the upgrade production will take
        (None, None, False),  # the first release: nothing pinned then, nothing now
        (B, A, True),  # tested from another pin (a rollback moved it since)
        (None, A, True),  # tested before anything was pinned; something is now
        (A, None, True),
    ],
)
def test_evidence_proves_the_upgrade_from_the_pin_it_replaces(tested_from, pinned_now, refused):
    text = json.dumps({**json.loads(record(digest=C)), "from_digest": tested_from})
    if refused:
        with pytest.raises(PinError, match=f"tested the upgrade from {tested_from or 'nothing'}, but production is "
                                           f"pinned to {pinned_now or 'nothing'} now: test {C} again"):  # fmt: skip
            check_evidence(text, "ev.json", C, pinned_now)
    else:
        assert check_evidence(text, "ev.json", C, pinned_now)["passed"] is True


def test_a_record_written_before_from_digest_was_recorded_is_judged_as_before():
    assert check_evidence(record(), "ev.json", A, B)["passed"] is True


def test_check_evidence_summary():
    assert check_evidence(record(), "ev.json", A) == {
        "record": "ev.json", "passed": True, "checks": 2, "hosts": ["test1"], "finished_at": "T", "operator": "ops",
        "signature": None,
    }  # fmt: skip


def test_the_summary_carries_the_signer_the_test_deploy_verified():
    signer = {"verified": True, "issuer": "https://issuer", "subject": "https://github.com/a/b", "bundle_digest": B}
    text = json.dumps({**json.loads(record()), "signature": signer})
    assert check_evidence(text, "ev.json", A)["signature"] == signer


def test_markdown_is_deterministic_and_complete():
    first = plan_pin(
        None, [], REF_A, reason="v1 | first", now="T1", evidence={"passed": True, "checks": 4, "hosts": ["test1"]}
    )
    second = plan_pin(first.pin, first.history, REF_B, reason="v2", now="T2", forced=True)
    text = render_markdown(second.pin, second.history)
    assert text == render_markdown(second.pin, second.history)
    assert f"| Digest | `{B}` |" in text
    assert "FORCED" in text
    assert "| `sha256:aaaaaaaaaaaa` | release | T1 | T2 | v1 \\| first |" in text
    assert "No image is pinned yet." in render_markdown(None, [])


SCRIPT = f"""IMAGE={REPO}@{A}
OTHER={REPO}:main@{A}
EXTRA={REPO}-extra@{A}
NGINX=docker.io/library/nginx@{A}
RUN {REPO}:main
BARE={REPO}
"""


def test_rewrite_references_replaces_only_the_repository():
    result = rewrite_references(SCRIPT, "s.sh", REF_B)
    lines = result.text.splitlines()
    assert lines[0] == f"IMAGE={REPO}@{B}"
    assert lines[1] == f"OTHER={REPO}:main@{B}"
    assert lines[2] == f"EXTRA={REPO}-extra@{A}"
    assert lines[3] == f"NGINX=docker.io/library/nginx@{A}"
    assert [r["line"] for r in result.replacements] == [1, 2]
    assert result.unpinned_refs == [{"line": 5, "reference": f"{REPO}:main"}]
    assert result.pinned == 2


def test_rewrite_is_idempotent():
    once = rewrite_references(SCRIPT, "s.sh", REF_B)
    twice = rewrite_references(once.text, "s.sh", REF_B)
    assert twice.text == once.text
    assert twice.replacements == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"image: nginx@{A}\n", f"image: nginx@{B}\n"),
        (f"image: library/nginx:1.27@{A}\n", f"image: library/nginx:1.27@{B}\n"),
        (f"image: docker.io/library/nginx@{A}\n", f"image: docker.io/library/nginx@{B}\n"),
        (f"image: mynginx@{A}\n", f"image: mynginx@{A}\n"),
    ],
)
def test_rewrite_docker_hub_short_names(text, expected):
    ref = parse_pinned_reference(f"nginx@{B}")
    assert rewrite_references(text, "f", ref).text == expected


@pytest.mark.parametrize(
    ("text", "on_unpinned", "outcome"),
    [
        (f"{REPO}@{A}\n", "fail", None),
        (f"{REPO}@{A}\n{REPO}:main\n", "warn", "mutable tag (line 2"),
        (f"{REPO}@{A}\n{REPO}:main\n", "ignore", None),
        (f"{REPO}@{A}\n{REPO}:main\n", "fail", PinError),
        (f"{REPO}:main\n", "ignore", PinError),
        ("nothing here\n", "ignore", PinError),
    ],
)
def test_check_target(text, on_unpinned, outcome):
    rewrite = rewrite_references(text, "t.sh", REF_B)
    if outcome is PinError:
        with pytest.raises(PinError, match=r"t\.sh"):
            check_target(rewrite, REF_B, on_unpinned)
    elif outcome is None:
        assert check_target(rewrite, REF_B, on_unpinned) is None
    else:
        assert outcome in check_target(rewrite, REF_B, on_unpinned)


def test_rendered_pin_file_passes_the_project_yamllint(tmp_path):
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    from tests.support.lab import ROOT

    first = plan_pin(
        None, [], REF_A, reason="first", now="T1", evidence={"passed": True, "checks": 2, "hosts": ["test1"]}
    )
    second = plan_pin(first.pin, first.history, REF_B, reason="second", now="T2")
    text = render_pin_file(second.pin, second.history)
    config = YamlLintConfig(file=str(ROOT / ".yamllint"))
    problems = [f"{p.line}: {p.desc}" for p in linter.run(text, config)]
    assert problems == []
