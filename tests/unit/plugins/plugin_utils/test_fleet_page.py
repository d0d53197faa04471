# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet page: host states kept between runs, what each row says, and a page that needs nothing else to read."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from ansible_collections.pinned.release.plugins.module_utils._status import host_status, last_changes
from ansible_collections.pinned.release.plugins.plugin_utils._fleet_page import (
    age,
    candidate_hosts,
    host_problems,
    load_hosts,
    render,
    store_host,
)

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
PIN = {"image": f"repo@{D2}", "repository": "repo", "digest": D2, "tag": "0.12.4", "pinned_at": "2026-11-26T09:00:00Z",
       "reason": "promote 0.12.4"}  # fmt: skip
HISTORY = [{"image": f"repo@{D1}", "digest": D1, "tag": "0.12.0", "pinned_at": "2026-11-20T09:00:00Z",
            "unpinned_at": "2026-11-26T09:00:00Z", "reason": "first <release>"}]  # fmt: skip


def tenant(name: str, digest: str = D2, status: str = "running", health: str = "healthy", **extra) -> dict:
    return {"name": name, "container": f"openwebui-{name}", "domain": f"{name}.example", "digest": digest,
            "status": status, "health": health, "started_at": "2026-11-26T11:00:00Z",
            "snapshots": {"count": 3, "newest_at": "2026-11-26T10:00:00Z"},
            "last_change": {"time": "2026-11-26T11:30:00Z", "operator": "alice", "reason": "rollout of the pin",
                            "result": "ok"}, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("when", "expected"),
    [("2026-11-26T11:59:30Z", "30 s"), ("2026-11-26T11:00:00Z", "1 h"), ("2026-11-26T11:01:00Z", "59 min"), ("2026-11-26T06:59:00Z", "5 h"),
     ("2026-11-24T12:00:00Z", "2 d"), (None, "-"), ("yesterday", "-"), ("2026-11-26T13:00:00Z", "0 s")],
)  # fmt: skip
def test_age(when, expected):
    assert age(when, NOW) == expected


def test_a_host_seen_before_keeps_its_tenants_when_a_later_run_only_has_a_failure(tmp_path):
    store = str(tmp_path / "hosts")
    store_host(store, "prod1", [tenant("acme")], None, None, "2026-11-26T11:00:00Z")
    store_host(store, "prod1", None, "prod1: unreachable", None, "2026-11-26T11:50:00Z")
    record = load_hosts(store)["prod1"]
    assert record["tenants"][0]["name"] == "acme"
    assert record["observed_at"] == "2026-11-26T11:00:00Z"
    assert record["failure"] == "prod1: unreachable"


def test_drift_rows_are_replaced_only_by_a_drift_check(tmp_path):
    store = str(tmp_path / "hosts")
    row = {"host": "prod1", "container": "openwebui-acme", "field": "digest", "expected": D2, "actual": D1}
    store_host(store, "prod1", [tenant("acme")], None, [row], "2026-11-26T11:00:00Z")
    store_host(store, "prod1", [tenant("acme")], None, None, "2026-11-26T11:10:00Z")
    assert load_hosts(store)["prod1"]["drift"] == [row]
    store_host(store, "prod1", [tenant("acme")], None, [], "2026-11-26T11:20:00Z")
    assert load_hosts(store)["prod1"]["drift"] == []


def page(tmp_path, hosts: dict) -> str:
    evidence = tmp_path / "evidence"
    evidence.mkdir(exist_ok=True)
    (evidence / f"{D2.replace(':', '-')}.json").write_text("{}")
    return render(hosts, PIN, HISTORY, str(evidence), str(tmp_path / "fleet"), NOW)


def rows(text: str) -> list:
    return re.findall(r"<tr class='(\w+)'><td><b>([^<]+)</b>", text)


def test_each_tenant_row_is_coloured_by_health_and_pin(tmp_path):
    hosts = {
        "prod1": {"host": "prod1", "observed_at": "2026-11-26T11:58:00Z", "tenants": [
            tenant("acme"), tenant("globex", health="unhealthy"), tenant("initech", health="starting"),
            tenant("umbrella", digest=D1), tenant("hooli", status="exited", finished_at="2026-11-26T11:45:00Z"),
            tenant("pied", status="absent", digest=None, started_at=None),
            tenant("raviga", status="created", finished_at="0001-01-01T00:00:00Z")]},
    }  # fmt: skip
    text = page(tmp_path, hosts)
    assert rows(text) == [("ok", "acme"), ("bad", "globex"), ("warn", "initech"), ("warn", "umbrella"),
                          ("bad", "hooli"), ("bad", "pied"), ("bad", "raviga")]  # fmt: skip
    assert "<b>7</b>tenants" in text
    assert "<b>4</b>down or unhealthy" in text
    assert "<b>2</b>not on the pin" in text
    assert "not on the pin</span></td><td><span class='badge ok'>healthy</span>" in text, (
        "the row warns, not its health"
    )
    assert "exited</span><br><span class='muted'>down 15 min</span>" in text, (
        "an exited tenant is down since it stopped"
    )
    assert "absent</span><br><span class='muted'>no container</span>" in text
    assert "created</span><br><span class='muted'>down</span>" in text, "Docker's zero time is no date"
    assert text.count("up 1 h") == 4, "only the running tenants are up"
    assert f"<code>{D2[:19]}</code> 0.12.4" in text
    assert f"<code>{D1[:19]}</code> 0.12.0" in text
    assert "alice, 30 min ago" in text
    assert "newest 2 h ago" in text
    assert "seen 2 min ago" in text


def test_a_drifted_tenant_row_says_drift_and_is_not_green(tmp_path):
    drift = [
        {"container": "openwebui-acme", "field": "env WEBUI_URL", "expected": "https://acme", "actual": "-"},
        {"container": "openwebui-acme", "field": "memory", "expected": "1g", "actual": "2g"},
        {"container": "openwebui-ghost", "field": "unexpected", "expected": "not running", "actual": "running"},
    ]
    hosts = {"prod1": {"host": "prod1", "observed_at": "2026-11-26T11:58:00Z", "drift": drift,
                       "drift_checked_at": "2026-11-26T11:00:00Z",
                       "tenants": [tenant("acme"), tenant("globex"), tenant("hooli", status="exited")]}}  # fmt: skip
    text = page(tmp_path, hosts)
    assert rows(text) == [("warn", "acme"), ("ok", "globex"), ("bad", "hooli")]
    assert "<span class='badge bad'>drift (2)</span>" in text, "the row names how many drift rows are its own"
    assert text.count("badge bad'>drift (") == 1


def test_problems_come_first_and_healthy_hosts_are_folded(tmp_path):
    hosts = {f"prod{i:02d}": {"host": f"prod{i:02d}", "observed_at": "2026-11-26T11:58:00Z",
                              "tenants": [tenant(f"t{i}a"), tenant(f"t{i}b")]} for i in range(1, 21)}  # fmt: skip
    hosts["prod07"]["tenants"][1] = tenant("t7b", status="exited", finished_at="2026-11-26T11:00:00Z")
    hosts["prod13"]["tenants"] = [tenant("t13a", digest=D1), tenant("t13b", health="unhealthy")]
    hosts["prod15"]["drift"] = [{"container": "openwebui-t15a", "field": "image", "expected": D2, "actual": D1}]
    text = page(tmp_path, hosts)
    order = re.findall(r"<h2 id='(prod\d+)'>", text)
    assert order[:3] == ["prod13", "prod07", "prod15"], "the most wrong first"
    folded = text[text.index("<details>") : text.index("</details>")]
    assert "<summary>17 healthy host(s): <span class='hosts'>prod01, prod02," in folded
    assert all(f"id='prod{i:02d}'" in folded for i in (1, 2, 20))
    assert "id='prod07'" not in folded
    assert "<script" not in text


def test_a_rollback_pin_shows_the_tag_its_digest_was_first_pinned_with(tmp_path):
    rollback = {"image": f"repo@{D1}", "repository": "repo", "digest": D1, "kind": "rollback",
                "pinned_at": "2026-11-26T11:00:00Z", "reason": "rollback: chat export broken"}  # fmt: skip
    history = [dict(PIN, unpinned_at="2026-11-26T11:00:00Z"), *HISTORY]
    text = render({}, rollback, history, "", str(tmp_path / "fleet"), NOW)
    table = text[text.index("<h2>Pin history</h2>") :]
    assert f"<tr><td><code>{D1[:19]}</code></td><td>0.12.0 (rollback)</td>" in table


def test_the_page_links_evidence_escapes_text_and_needs_nothing_else(tmp_path):
    hosts = {"prod2": {"host": "prod2", "observed_at": "2026-11-26T11:00:00Z", "failure": "prod2: <b>boom</b>",
                       "drift": [{"container": "openwebui-x", "field": "digest", "expected": D2, "actual": D1}],
                       "drift_checked_at": "2026-11-26T11:00:00Z", "tenants": [tenant("acme")]}}  # fmt: skip
    text = page(tmp_path, hosts)
    assert f"href='../evidence/{D2.replace(':', '-')}.json'" in text
    assert text.count(">evidence</a>") == 2  # the pin, and its history row; the older digest has none
    assert "first &lt;release&gt;" in text
    assert "prod2: &lt;b&gt;boom&lt;/b&gt;" in text
    assert "last run failed" in text
    assert "found 1 h ago" in text
    assert "<script" not in text.lower()
    assert "http://" not in text
    assert "https://" not in text
    assert "<link" not in text.lower()
    assert "@import" not in text


def digest_cell(text: str, name: str) -> str:
    """The digest cell of tenant ``name``'s row."""
    row = re.search(rf"<tr class='\w+'><td><b>{name}</b>.*?</tr>", text).group(0)
    return re.findall(r"<td>(.*?)</td>", row)[1]


@pytest.mark.parametrize(
    ("version", "digest", "cell"),
    [("0.12.4", D2, f"0.12.4 · <code>{D2[:19]}</code><br>"),  # the tag says the same: once is enough
     ("0.12.0", D1, f"0.12.0 · <code>{D1[:19]}</code><br>"),
     ("0.12.5-rc1", D3, f"0.12.5-rc1 · <code>{D3[:19]}</code><br>"),  # a digest never pinned has no tag
     ("main", D2, f"main · <code>{D2[:19]}</code> 0.12.4<br>"),
     (None, D2, f"<code>{D2[:19]}</code> 0.12.4<br>"),  # no version label: nothing extra
     ("", D2, f"<code>{D2[:19]}</code> 0.12.4<br>"),
     ("<i>1</i>", D2, f"&lt;i&gt;1&lt;/i&gt; · <code>{D2[:19]}</code> 0.12.4<br>")],
)  # fmt: skip
def test_the_app_version_stands_beside_the_digest(tmp_path, version, digest, cell):
    hosts = {"prod1": {"host": "prod1", "tenants": [tenant("acme", digest=digest, version=version)]}}
    assert digest_cell(page(tmp_path, hosts), "acme").startswith(cell)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [({"test": ["test1"], "production": ["prod1", "prod2"]}, ["test1"]),
     ({"test": ["test2", "test1"]}, ["test1", "test2"]),
     ({"test": ["test1", "prod1"], "production": ["prod1"]}, ["test1"]),  # also production: held to the pin
     ({"production": ["prod1"]}, []),
     ({}, [])],
)  # fmt: skip
def test_the_test_hosts_are_the_inventory_group_test(groups, expected):
    assert candidate_hosts(groups) == expected


CANDIDATE = "<span class='badge cand'>candidate</span>"
ON_PIN = "<span class='badge ok'>on the pin</span>"
OFF_PIN = "<span class='badge warn'>not on the pin</span>"


@pytest.mark.parametrize(
    ("host", "tenants", "problems", "row", "pin_badge", "heading"),
    [("test1", [tenant("t1a", digest=D3, version="0.12.5")], 0, "ok", CANDIDATE,
      f"test: running candidate 0.12.5 · <code>{D3[:19]}</code>"),
     ("test1", [tenant("t1a", digest=D3), tenant("t1b", digest=D3)], 0, "ok", CANDIDATE,
      f"test: running candidate <code>{D3[:19]}</code>"),
     ("test1", [tenant("t1a")], 0, "ok", ON_PIN, "test: running the pin"),
     ("test1", [tenant("t1a", digest=D3, health="unhealthy")], 1, "bad", CANDIDATE,  # a failing candidate is down
      f"test: running candidate <code>{D3[:19]}</code>"),
     ("prod1", [tenant("p1a", digest=D3, version="0.12.5")], 1, "warn", OFF_PIN, None),
     ("prod1", [tenant("p1a", digest=None, status="absent")], 2, "bad", OFF_PIN, None)],
)  # fmt: skip
def test_a_test_host_runs_a_candidate_a_production_host_off_the_pin_is_a_problem(tmp_path, host, tenants, problems, row,
                                                                                 pin_badge, heading):  # fmt: skip
    record = {"host": host, "observed_at": "2026-11-26T11:58:00Z", "tenants": tenants}
    hosts = {host: record, "prod9": {"host": "prod9", "tenants": [tenant("p9a")]}}
    text = render(hosts, PIN, HISTORY, "", str(tmp_path / "fleet"), NOW, test_hosts=["test1"])
    assert host_problems(record, PIN, on_test=host == "test1") == problems
    assert {name: level for level, name in rows(text)}[tenants[0]["name"]] == row
    assert f"{pin_badge}</td>" in text
    off_pin = sum(t.get("digest") != D2 for t in tenants) if host == "prod1" else 0
    assert f"<b>{off_pin}</b>not on the pin" in text, "a test host's candidate is not off the pin"
    if heading:
        assert f"<h2 id='test1'>test1 <span class='badge cand'>{heading}</span>" in text
    else:
        assert "test: running" not in text
    assert re.findall(r"<h2 id='(\w+)'>", text) == [host, "prod9"], "problems first, then test hosts, then healthy"
    assert "<summary>1 healthy host(s): <span class='hosts'>prod9</span></summary>" in text, (
        "only the healthy production host is folded"
    )


def test_last_changes_takes_the_newest_record_of_each_tenant_from_the_tail(tmp_path):
    log = tmp_path / "audit.jsonl"
    lines = [{"tenant": "acme", "result": "ok", "time": "t1"}, {"tenant": None, "result": "lock taken over"},
             {"tenant": "globex", "result": "failed, put back", "time": "t2"}, {"tenant": "acme", "result": "ok", "time": "t3"}]  # fmt: skip
    log.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    assert {name: r["time"] for name, r in last_changes(str(log)).items()} == {"acme": "t3", "globex": "t2"}
    tail = last_changes(str(log), tail_bytes=60)  # the first, cut line is dropped
    assert set(tail) <= {"acme"}
    assert last_changes(str(tmp_path / "missing.jsonl")) == {}


class Engine:
    """Only what host_status asks of an engine."""

    def __init__(self, containers: dict) -> None:
        self.containers = containers

    def container(self, name: str):
        return self.containers.get(name)


def test_host_status_says_what_runs_the_snapshots_and_the_last_change(tmp_path):
    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps({"tenant": "acme", "time": "t1", "operator": "alice", "reason": "r", "result": "ok",
                                 "from": D1, "to": D2, "snapshot": "/x"}) + "\n")  # fmt: skip
    snapshots = tmp_path / "acme/snapshots"
    snapshots.mkdir(parents=True)
    for stamp in ("20261126T100000.000Z", "20261126T110000.000Z"):
        archive = snapshots / f"{stamp}-acme.tar.gz"
        archive.write_bytes(b"x")
        taken = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:00:00Z"
        (snapshots / f"{archive.name}.json").write_text(json.dumps({"snapshot": str(archive), "taken_at": taken,
                                                                    "taken_epoch": int(stamp[9:11])}))  # fmt: skip
    specs = [{"name": n, "container": f"openwebui-{n}", "domain": f"{n}.example", "dir": str(tmp_path / n)}
             for n in ("acme", "globex")]  # fmt: skip
    engine = Engine({"openwebui-acme": {"image": f"repo@{D2}", "digest": D2, "status": "running", "health": "healthy",
                                        "started_at": "2026-11-26T11:00:00Z", "finished_at": "2026-11-26T10:59:50Z"}})  # fmt: skip
    acme, globex = host_status(engine, specs, str(audit))
    assert (acme["digest"], acme["status"], acme["health"]) == (D2, "running", "healthy")
    assert (acme["started_at"], acme["finished_at"]) == ("2026-11-26T11:00:00Z", "2026-11-26T10:59:50Z")
    assert acme["snapshots"] == {"count": 2, "newest_at": "2026-11-26T11:00:00Z", "oldest_at": "2026-11-26T10:00:00Z"}
    assert acme["last_change"] == {
        "time": "t1",
        "operator": "alice",
        "reason": "r",
        "result": "ok",
        "from": D1,
        "to": D2,
    }
    assert (globex["status"], globex["digest"], globex["last_change"]) == ("absent", None, None)
    assert globex["snapshots"]["count"] == 0


@pytest.mark.parametrize(("answers", "health"), [(True, "healthy"), (False, "starting")])
def test_a_tenant_docker_still_calls_starting_is_healthy_when_the_app_answers(tmp_path, answers, health):
    spec = {"name": "acme", "container": "openwebui-acme", "domain": "acme.example", "dir": str(tmp_path / "acme")}
    engine = Engine({"openwebui-acme": {"image": "i", "digest": D2, "status": "running", "health": "starting"}})
    (status,) = host_status(engine, [spec], str(tmp_path / "audit.jsonl"), answers_health=lambda s, f: answers)
    assert status["health"] == health


OCI_VERSION = "org.opencontainers.image.version"


@pytest.mark.parametrize(
    ("image_labels", "version_label", "version"),
    [({OCI_VERSION: "0.12.4"}, OCI_VERSION, "0.12.4"),
     ({OCI_VERSION: "v0.6.5"}, OCI_VERSION, "v0.6.5"),
     ({OCI_VERSION: "2.0.0-rc.1+build.7"}, OCI_VERSION, "2.0.0-rc.1+build.7"),
     ({OCI_VERSION: "main"}, OCI_VERSION, "main"),  # a branch build says so: shown as it is
     ({OCI_VERSION: " 0.12.4\n"}, OCI_VERSION, "0.12.4"),
     ({"org.opencontainers.image.title": "Open WebUI"}, OCI_VERSION, None),  # no version label
     ({}, OCI_VERSION, None),
     (None, OCI_VERSION, None),
     ({OCI_VERSION: ""}, OCI_VERSION, None),  # LABEL ...version=${VERSION} with the build argument unset
     ({OCI_VERSION: "1.0 beta"}, OCI_VERSION, None),
     ({OCI_VERSION: "<b>1.0</b>"}, OCI_VERSION, None),
     ({OCI_VERSION: "1." + "9" * 80}, OCI_VERSION, None),
     ({OCI_VERSION: "0.12.4\n0.12.5"}, OCI_VERSION, None),
     ({OCI_VERSION: "0.12.4", "com.example.app-version": "7.1"}, "com.example.app-version", "7.1"),  # the app's own label
     ({OCI_VERSION: "0.12.4"}, None, None)],  # an app profile without a version label
)  # fmt: skip
def test_a_tenant_shows_the_version_its_image_declares_in_the_apps_version_label(
    tmp_path, image_labels, version_label, version
):
    spec = {"name": "acme", "container": "openwebui-acme", "domain": "acme.example", "dir": str(tmp_path / "acme")}
    engine = Engine({"openwebui-acme": {"image": "i", "digest": D2, "status": "running", "health": "healthy",
                                        "image_labels": image_labels}})  # fmt: skip
    (status,) = host_status(engine, [spec], str(tmp_path / "audit.jsonl"), version_label=version_label)
    assert status["version"] == version


def test_a_tenant_without_a_container_or_whose_engine_fails_has_no_version(tmp_path):
    class Failing:
        def container(self, name: str):
            raise RuntimeError("docker: connection refused")

    spec = {"name": "acme", "container": "openwebui-acme", "domain": "acme.example", "dir": str(tmp_path / "acme")}
    for engine in (Engine({}), Failing()):
        (status,) = host_status(engine, [spec], str(tmp_path / "audit.jsonl"), version_label=OCI_VERSION)
        assert status["version"] is None
