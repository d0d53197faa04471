# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input through the real parts: a module on a lab node over SSH, the real engine, a filter in a real Ansible run.

Every row of every module and filter is in the unit layer (tests/unit/plugins/modules/test_bad_input.py and
tests/unit/plugins/filter/test_bad_input.py), where the module's own main() runs in process. Here a few representatives
prove the same holds as Ansible really runs them: one line, no traceback, no MODULE FAILURE, the node unchanged.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.lab import APP_REPO, ROOT, ansible_module, node_sh, registry_digest, run

NODE = "test1"
APP = yaml.safe_load((ROOT / "profiles/open-webui.yml").read_text())["runtime"] | {
    "scheme": "http",
    "data_root": "/opt/bad-input",
    "container_prefix": "badinput-",
}
TENANT = {"name": "alpha", "domain": "alpha.bad.lab", "port": 3990, "secrets": {"WEBUI_SECRET_KEY": "k" * 32}}


def pinned() -> str:
    return f"{APP_REPO}@{registry_digest('v1')}"


STATE = {"state_dir": "/var/lib/bad-input", "audit_log": "/var/log/bad-input.log"}
HOST_ROWS = [
    # the argument spec's own type check, then the tenant rules: both reach the user as one line over SSH
    ("tenant_rollout", lambda: {"image": pinned(), "tenants": [TENANT | {"port": [3990]}], "app": APP, **STATE}, "port"),
    ("tenant_rollout", lambda: {"image": pinned(), "tenants": [TENANT | {"name": "common"}], "app": APP,
                                "nginx": {"enabled": False}, **STATE}, "reserved"),
    # the real engine answering "no such container" while waiting
    ("verify_container", lambda: {"containers": [{"name": "bad-input-absent", "image": pinned()}], "wait_timeout": 2},
     "bad-input-absent: container does not exist"),
]  # fmt: skip


@pytest.fixture
def containers_before(lab):
    yield node_sh(NODE, "docker ps -aq | sort").stdout
    # A row that failed by changing the host must not make the next ones fail too.
    node_sh(NODE, "docker rm -f badinput-alpha >/dev/null 2>&1; rm -rf /opt/bad-input /var/lib/bad-input /var/log/bad-input.log",
            check=False)  # fmt: skip


@pytest.mark.parametrize(("module", "make_args", "fragment"), HOST_ROWS,
                         ids=[f"{m}-{i}" for i, (m, _a, _f) in enumerate(HOST_ROWS)])  # fmt: skip
def test_host_modules_refuse_bad_input_in_one_line(containers_before, module, make_args, fragment):
    result = ansible_module(f"pinned.release.{module}", make_args(), host=NODE)
    assert result.get("failed") is True, result
    message = result.get("msg", "")
    assert "\n" not in message.strip(), message
    assert fragment in message, message
    assert "Traceback" not in result["_stdout"]
    assert "MODULE FAILURE" not in result["_stdout"]
    assert node_sh(NODE, "docker ps -aq | sort").stdout == containers_before, "a bad input changed the host"
    assert node_sh(NODE, "ls /opt/bad-input 2>/dev/null | wc -l").stdout.strip() == "0"


def debug(expression: str) -> tuple:
    result = run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": "{{ " + expression + " }}"})],
                 env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})  # fmt: skip
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], result.stdout + result.stderr


def test_a_filter_refuses_bad_input_in_one_line_in_a_real_ansible_run():
    outcome, output = debug("5 | pinned.release.rollback_target([])")
    assert outcome.get("failed") is True, outcome
    assert "rollback_target" in outcome["msg"], outcome["msg"]
    assert "Traceback" not in output


def test_tenant_problems_name_a_bad_tenant_in_one_line_in_a_real_ansible_run():
    app = json.dumps(APP)
    outcome, output = debug(
        f"[{{'name': 'a', 'domain': 'a.lab', 'port': [3000]}}] | pinned.release.tenant_problems({app})"
    )
    assert outcome.get("failed") is not True, outcome
    assert any("port" in problem and "\n" not in problem for problem in outcome["msg"]), outcome["msg"]
    assert "Traceback" not in output
