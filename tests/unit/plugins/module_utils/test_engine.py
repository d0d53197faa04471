# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's reads for adoption over a stub of the SDK's client: what Docker answers, and each of its errors taken
as the engine takes them (absent is None; anything else an EngineCallError naming the call, of the kind it is)."""

from __future__ import annotations

import pytest
from requests.exceptions import ReadTimeout

from ansible_collections.pinned.release.plugins.module_utils._docker import DockerException, NotFound
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError


class Client:
    """Answers each SDK verb with what ``answers`` gives it: a value, or an exception to raise."""

    def __init__(self, **answers) -> None:
        self.answers = answers
        self.calls: list = []

    def __getattr__(self, verb: str):
        def call(*args, **kwargs):
            self.calls.append((verb, args))
            answer = self.answers[verb]
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


EXEC = {"exec_create": {"Id": "e1"}, "exec_start": b"k-generated\n", "exec_inspect": {"ExitCode": 0}}


@pytest.mark.parametrize(
    ("verb", "answers", "expected"),
    [
        ("inspect", {"inspect_container": {"Id": "c1", "Name": "/acme"}}, {"Id": "c1", "Name": "/acme"}),
        ("inspect", {"inspect_container": NotFound("No such container: acme")}, None),
        ("inspect_image", {"inspect_image": {"RepoDigests": ["r@sha256:a"]}}, {"RepoDigests": ["r@sha256:a"]}),
        ("inspect_image", {"inspect_image": NotFound("No such image")}, None),
        ("read_file", EXEC, "k-generated\n"),
        ("read_file", {**EXEC, "exec_inspect": {"ExitCode": 1}}, None),  # no such file in the container
        ("read_file", {"exec_create": NotFound("No such container: acme")}, None),
    ],
)
def test_reads(verb, answers, expected):
    engine = DockerEngine(Client(**answers))
    args = ("acme", "/app/backend/.webui_secret_key") if verb == "read_file" else ("acme",)
    assert getattr(engine, verb)(*args) == expected


@pytest.mark.parametrize(
    ("verb", "answers", "message", "kind"),
    [
        ("inspect", {"inspect_container": DockerException("500 Server Error: boom")},
         "inspecting container acme: 500 Server Error: boom", "error"),
        ("inspect_image", {"inspect_image": ReadTimeout("read timed out")}, "inspecting image acme: read timed out",
         "transient"),
        ("read_file", {"exec_create": DockerException("Container acme is not running")},
         "reading /k inside container acme: Container acme is not running", "race"),
        ("read_file", {**EXEC, "exec_start": DockerException("OCI runtime exec failed: cat: not found")},
         "reading /k inside container acme: OCI runtime exec failed", "error"),
    ],
)  # fmt: skip
def test_errors_name_the_call_and_their_kind(verb, answers, message, kind):
    engine = DockerEngine(Client(**answers))
    args = ("acme", "/k") if verb == "read_file" else ("acme",)
    with pytest.raises(EngineCallError) as raised:
        getattr(engine, verb)(*args)
    assert str(raised.value).startswith(message)
    assert raised.value.kind == kind
