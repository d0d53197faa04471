# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet page of 20 hosts and 100 tenants, drawn by the fleet_page action through ansible-playbook (an inventory
with test and production groups, no host reached) and rendered by headless Chromium: problems first, the healthy hosts
folded, versions shown, the test host on its candidate, no script; the screenshot is a real picture of the page.

No lab: the host states are built here as tenant_rollout returns them. Chromium comes with `make deps`."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.support.lab import ROOT

OUTPUT = ROOT / ".build/test-output"  # the screenshot, for a person to look at
WIDTH, HEIGHT = 1280, 2400
BROWSER = ["chromium-headless-shell", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
REPO = "registry.example.com/acme/open-webui"
OLD, PIN, CANDIDATE = ("sha256:" + c * 16 for c in ("0a1b", "7c3d", "e5f6"))
VERSIONS = {OLD: "0.12.0", PIN: "0.12.4", CANDIDATE: "0.12.5"}
CLIENTS = ("northwind", "globex", "initech", "umbrella", "hooli", "vandelay", "wonka", "tyrell", "soylent", "cyberdyne",
           "gringotts", "monarch", "stark", "wayne", "oscorp", "aperture", "massive", "duff", "krusty", "pied-piper")  # fmt: skip
TEAMS = ("legal", "sales", "support", "research", "finance")
PRODUCTION = [f"prod{i:02d}" for i in range(1, 20)]
HOSTS = ["test1", *PRODUCTION]
DOWN, DRIFTED, OFF_PIN = "prod03", "prod08", "prod12"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tenant_status(host: str, index: int, now: datetime, digest: str = PIN, **change) -> dict:
    """A tenant as tenant_rollout's status says it: healthy on ``digest`` unless ``change`` says otherwise."""
    name = f"{CLIENTS[HOSTS.index(host)]}-{TEAMS[index]}"
    return {"name": name, "container": f"openwebui-{name}", "domain": f"{name}.chat.example.com",
            "image": f"{REPO}@{digest}", "digest": digest, "version": VERSIONS[digest], "status": "running",
            "health": "healthy", "started_at": iso(now - timedelta(hours=26 + index)), "finished_at": None,
            "snapshots": {"count": 5, "newest_at": iso(now - timedelta(hours=3)), "oldest_at": iso(now - timedelta(days=9))},
            "last_change": {"time": iso(now - timedelta(hours=26 + index)), "operator": "alice",
                            "reason": "rollout of 0.12.4", "result": "ok", "from": OLD, "to": PIN}, **change}  # fmt: skip


def fleet(now: datetime) -> tuple:
    """({host: tenant_result}, drift report) of a realistic fleet: 19 production hosts, one of them with a tenant down,
    one drifted, one with a tenant left on the old pin; the test host on the candidate."""
    results = {host: {"status": [tenant_status(host, i, now) for i in range(5)]} for host in PRODUCTION}
    results["test1"] = {"status": [tenant_status("test1", i, now, CANDIDATE, last_change={
        "time": iso(now - timedelta(minutes=50)), "operator": "bob", "reason": "test 0.12.5", "result": "ok",
        "from": PIN, "to": CANDIDATE}) for i in range(5)]}  # fmt: skip
    results[DOWN]["status"][2].update(status="exited", health=None, finished_at=iso(now - timedelta(minutes=40)))
    results[OFF_PIN]["status"][4].update(digest=OLD, image=f"{REPO}@{OLD}", version=VERSIONS[OLD], last_change={
        "time": iso(now - timedelta(hours=2)), "operator": "alice", "reason": "rollout of 0.12.4",
        "result": "failed, put back", "from": OLD, "to": PIN})  # fmt: skip
    drifted = results[DRIFTED]["status"][1]["container"]
    drift = {"hosts": {host: {"drifted": host == DRIFTED} for host in PRODUCTION},
             "rows": [{"host": DRIFTED, "container": drifted, "field": "env.OPENID_PROVIDER_URL",
                       "expected": "https://sso.example.com/realms/acme", "actual": "https://sso-old.example.com"}]}  # fmt: skip
    return results, drift


def draw(tmp_path: Path, results: dict, drift: dict, now: datetime) -> Path:
    """The page as the notify role draws it: the fleet_page action in a play, the inventory's groups known."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[test]\ntest1\n\n[production]\n" + "\n".join(PRODUCTION) + "\n")
    pin_file = tmp_path / "release_pin.yml"
    pin_file.write_text(yaml.safe_dump({
        "release_pin": {"image": f"{REPO}@{PIN}", "repository": REPO, "digest": PIN, "tag": "0.12.4",
                        "pinned_at": iso(now - timedelta(days=1, hours=2)), "reason": "promote 0.12.4 (tested on test1)"},
        "release_pin_history": [{"image": f"{REPO}@{OLD}", "digest": OLD, "tag": "0.12.0",
                                 "pinned_at": iso(now - timedelta(days=20)), "unpinned_at": iso(now - timedelta(days=1, hours=2)),
                                 "reason": "first release"}]}))  # fmt: skip
    evidence = tmp_path / "evidence"  # what the test runs of the pin and of the candidate wrote
    evidence.mkdir()
    for digest in (PIN, CANDIDATE):
        (evidence / f"{digest.replace(':', '-')}.json").write_text("{}")
    facts = tmp_path / "facts.yml"
    facts.write_text(yaml.safe_dump({"fleet_results": results, "fleet_drift": drift}))
    playbook = tmp_path / "page.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Draw the fleet page", "pinned.release.fleet_page": {
            "path": str(tmp_path / "fleet/index.html"), "results": "{{ fleet_results }}", "drift": "{{ fleet_drift }}",
            "pin_file": str(pin_file), "evidence_dir": str(evidence)}}]}]))  # fmt: skip
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", f"@{facts}",
                          str(playbook)], capture_output=True, text=True, check=False, cwd=ROOT,
                         env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "WARNING" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-3000:]
    return tmp_path / "fleet/index.html"


def screenshot(page: Path, shot: Path) -> bytes:
    if shutil.which(BROWSER[0]) is None:
        pytest.fail(f"{BROWSER[0]} is not installed: run `make deps` (lab/lab.sh deps installs it)", pytrace=False)
    shot.unlink(missing_ok=True)
    subprocess.run([*BROWSER, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    return shot.read_bytes()


def png_pixels(data: bytes) -> tuple:
    """(width, height, the filtered scanlines) of a PNG, its chunks and their CRCs checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        assert struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.setdefault(kind, []).append(body)
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert (depth, colour) in ((8, 2), (8, 6)), f"an 8-bit RGB(A) picture, got depth {depth} colour type {colour}"
    lines = zlib.decompress(b"".join(chunks[b"IDAT"]))
    assert len(lines) == height * (1 + width * (3 if colour == 2 else 4)), "the picture data does not fill the picture"
    return width, height, lines


def test_the_page_of_20_hosts_opens_on_the_problems_and_renders_in_chromium(tmp_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    results, drift = fleet(now)
    page = draw(tmp_path, results, drift, now)
    text = page.read_text(encoding="utf-8")

    assert "<b>20</b>hosts" in text
    assert "<b>100</b>tenants" in text
    assert "<b>1</b>down or unhealthy" in text
    assert "<b>1</b>not on the pin" in text, (
        "the production tenant left on 0.12.0; the test host's five are not counted"
    )
    assert "<b>1</b>hosts with drift" in text
    headings = [line.split("'")[1] for line in text.split("<h2 id=")[1:]]
    assert headings[:4] == [DOWN, DRIFTED, OFF_PIN, "test1"], "problems first, then the test host"
    folded = text[text.index("<details>") : text.index("</details>")]
    healthy = [host for host in PRODUCTION if host not in (DOWN, DRIFTED, OFF_PIN)]
    assert f"<summary>16 healthy host(s): <span class='hosts'>{', '.join(healthy)}</span></summary>" in folded
    assert all(f"<h2 id='{host}'>" in folded for host in healthy)
    assert not [host for host in (DOWN, DRIFTED, OFF_PIN, "test1") if f"id='{host}'" in folded]
    assert (
        f"<h2 id='test1'>test1 <span class='badge cand'>test: running candidate 0.12.5 · <code>{CANDIDATE[:19]}</code>"
        in text
    )
    assert text.count(f"0.12.4 · <code>{PIN[:19]}</code>") == 94
    assert (f"0.12.0 · <code>{OLD[:19]}</code><br><span class='badge warn'>not on the pin</span></td>"
            "<td><span class='badge ok'>healthy</span>") in text, "healthy, on another digest"  # fmt: skip
    assert text.count("<span class='badge cand'>candidate</span>") == 5
    assert "exited</span><br><span class='muted'>down 40 min</span>" in text
    assert "env.OPENID_PROVIDER_URL: expected" in text
    assert "<script" not in text.lower()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "fleet-page-20-hosts.png"
    print(f"the fleet page: {page}\nits screenshot: {shot}")
    width, height, lines = png_pixels(screenshot(page, shot))
    assert (width, height) == (WIDTH, HEIGHT), shot
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body style='background:#f6f7f9'></body></html>")
    _w, _h, blank_lines = png_pixels(screenshot(blank, tmp_path / "blank.png"))
    # A blank page's picture is one colour: its compressed data is tiny; the page's is not.
    assert len(zlib.compress(lines)) > 10 * len(zlib.compress(blank_lines)), f"{shot} looks blank"
