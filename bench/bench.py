# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench: what an operator feels, each figure next to its peer measured in the same run.

Runs on the lab (make lab). Prints a table and writes bench/results.json and bench/results.md.
BENCH_RUNS (default 3) is how many times each figure is measured; the table shows the median,
min and max (the real-app upgrade and rollback run once). BENCH_ONLY=resolve,drift,fleet,rollout,openwebui,signature
limits the sections; scale (the cost curve on the lab's fleet, 3, 10 and 20 production hosts: BENCH_SCALE_HOSTS)
runs only when named, and writes bench/scale.{json,png} beside the results. It resets the lab nodes' tenants
(lab/lab.sh reset-tenants) before and after, and puts :release back on v1 (stand-in) and 0.12.0 (Open WebUI).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".collections")]

from ansible_collections.pinned.release.plugins.module_utils._registry import REGISTRY_ARGUMENT_SPEC  # noqa: E402
from ansible_collections.pinned.release.plugins.modules.resolve_digest import run_module as resolve  # noqa: E402
from tests.support.lab import (  # noqa: E402
    APP_REPO,
    FLEET_INVENTORY,
    NODES,
    REGISTRY,
    lab_script,
    node_sh,
    registry_digest,
)

# The lab's topology comes from its inventory (inventories/lab/hosts.ini).
TEST_NODE = next(name for name, node in NODES.items() if node.group == "test")
PRODUCTION = tuple(name for name, node in NODES.items() if node.group == "production")
from tests.support.workflow import TENANTS, Workspace, ensure_fleet, fleet_workspace, make_workspace  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
OUT = ROOT / "bench"
BIG_REPO = f"{REGISTRY}/pinned/bench-big"
BIG_TAG = "200mb"
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PINNED_OPERATOR="bench",
           PINNED_LAB_APP="standin")  # fmt: skip
JSON_ENV = dict(ENV, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")

rows: list = []  # (section, what, stats, peer_of, note)
results: dict = {"machine": {}, "figures": {}, "targets": []}


# ------------------------------------------------------------------ measuring
def stats(samples: list) -> dict:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
        "samples": samples,
    }


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def record(key: str, section: str, label: str, samples: list, unit: str = "s") -> dict:
    figure = stats(samples) | {"section": section, "label": label, "unit": unit}
    results["figures"][key] = figure
    rows.append(figure)
    print(
        f"  {label:<58} median {fmt(figure['median'], unit):>10}  (min {fmt(figure['min'], unit)}, max {fmt(figure['max'], unit)})"
    )
    return figure


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:g}"


def target(name: str, ok: bool, detail: str) -> None:
    results["targets"].append({"target": name, "met": ok, "detail": detail})
    print(f"  target {'MET   ' if ok else 'MISSED'} {name}: {detail}")


def sh(cmd: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False, **kwargs)  # noqa: S602
    if result.returncode != 0:
        raise SystemExit(
            f"bench: `{cmd}` failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
        )
    return result


def play_json(playbook: Path, extra: dict, inventory: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(extra, handle)
    cmd = ["ansible-playbook", str(playbook), "-e", f"@{handle.name}"]
    if inventory:
        cmd[1:1] = ["-i", inventory]
    proc = subprocess.run(cmd, cwd=ROOT, env=JSON_ENV, capture_output=True, text=True, check=False)
    os.unlink(handle.name)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {playbook.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def task_seconds(report: dict) -> dict:
    """{task name: seconds} from the ansible.posix.json callback's task durations."""
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    durations = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            span = task["task"]["duration"]
            durations[task["task"]["name"]] = (parse(span["end"]) - parse(span["start"])).total_seconds()
    return durations


def rollout_breakdown(report: dict) -> dict:
    """Where a deploy's seconds go, from its JSON report: per host the transaction task's duration, per tenant each
    step's own seconds (the result's timings), and the rest (Ansible around it)."""
    from datetime import datetime

    def seconds(span: dict) -> float:
        return (datetime.fromisoformat(span["end"].replace("Z", "+00:00"))
                - datetime.fromisoformat(span["start"].replace("Z", "+00:00"))).total_seconds()  # fmt: skip

    batches, tenants = [], []
    for play in report.get("plays", []):
        for task in play["tasks"]:
            if not task["task"]["name"].endswith("(one transaction on the host)"):
                continue
            batches.append((sorted(task["hosts"]), seconds(task["task"]["duration"])))  # hosts side by side
            for result in task["hosts"].values():
                tenants += [t.get("timings") or {} for t in result.get("tenants") or [] if t.get("timings")]
    steps = sorted({key for timings in tenants for key in timings})
    return {"batches": batches, "tenants": len(tenants),
            "median": {key: statistics.median([t[key] for t in tenants if key in t]) for key in steps}}  # fmt: skip


def print_breakdown(what: str, breakdown: dict, wall: float) -> None:
    median = breakdown["median"]
    own = {
        k: v for k, v in median.items() if k not in ("total_s", "unavailable_s", "start_to_ready_s", "stop_to_start_s")
    }
    inside = sum(span for _hosts, span in breakdown["batches"])
    print(f"  where the seconds of {what} go ({breakdown['tenants']} tenants, {wall:.1f} s wall):")
    print(f"    Ansible around the transactions: {wall - inside:.1f} s; the transactions: "
          + ", then ".join(f"{'+'.join(hosts)} {span:.1f} s" for hosts, span in breakdown["batches"]))  # fmt: skip
    print("    per tenant (median): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in own.items())
          + f"; its app's start to ready {median.get('start_to_ready_s', 0):.2f}; the move {median.get('total_s', 0):.2f}")  # fmt: skip
    results.setdefault("breakdowns", {})[what] = {"wall_s": wall, **breakdown}


def registry_has(repository: str, tag: str) -> bool:
    try:
        registry_digest(tag, repository)
    except urllib.error.HTTPError:
        return False
    return True


# ------------------------------------------------------------------ 1. resolve
def module_params(**given) -> dict:
    params = {name: spec.get("default") for name, spec in REGISTRY_ARGUMENT_SPEC.items()}
    params.update(image=None, images=None, platform=None)
    params.update(given)
    return params


def ensure_big_image() -> str:
    if not registry_has("pinned/bench-big", BIG_TAG):
        print("  (building and pushing a 200 MB image, once)")
        with tempfile.TemporaryDirectory() as ctx:
            sh(f"head -c 200M /dev/urandom > {ctx}/blob")
            Path(ctx, "Dockerfile").write_text(f"FROM {APP_REPO}:v1\nCOPY blob /bench-blob\n")
            sh(f"docker build -q -t {BIG_REPO}:{BIG_TAG} {ctx}")
        sh(f"docker push -q {BIG_REPO}:{BIG_TAG}")
    return f"{BIG_REPO}:{BIG_TAG}"


def ensure_many_tags(count: int) -> list:
    """`count` tags of the app in its own repository, made by re-putting v1's manifest (no pull)."""
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(f"http://{REGISTRY}/v2/pinned/openwebui/manifests/v1", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the lab registry
        manifest, media_type = response.read(), response.headers["Content-Type"]
    config = json.loads(manifest)["config"]["digest"]
    layers = [layer["digest"] for layer in json.loads(manifest)["layers"]]
    for digest in [config, *layers]:  # cross-repository mount, so the new repository has the blobs
        urllib.request.urlopen(
            urllib.request.Request(
                f"http://{REGISTRY}/v2/pinned/bench-tags/blobs/uploads/?mount={digest}&from=pinned/openwebui",
                method="POST",
            ),
            timeout=10,
        )
    tags = [f"t{i:03d}" for i in range(count)]
    for tag in tags:
        if not registry_has("pinned/bench-tags", tag):
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://{REGISTRY}/v2/pinned/bench-tags/manifests/{tag}",
                    data=manifest,
                    method="PUT",
                    headers={"Content-Type": media_type},
                ),
                timeout=10,
            )
    return [f"{REGISTRY}/pinned/bench-tags:{tag}" for tag in tags]


def bench_resolve() -> None:
    print("\n1. Digest resolution")
    image = ensure_big_image()
    expected = registry_digest(BIG_TAG, "pinned/bench-big")

    def module_in_process():
        assert resolve(module_params(image=image))["digest"] == expected

    def module_ad_hoc():
        sh(f"ansible localhost -m pinned.release.resolve_digest -a image={image}", env=ENV, cwd=ROOT)

    def skopeo():
        out = sh(f"skopeo inspect --tls-verify=false docker://{image}").stdout
        assert json.loads(out)["Digest"] == expected

    def pull_inspect():
        sh(f"docker image rm -f {image} >/dev/null 2>&1 || true")
        sh(f"docker pull -q {image}")
        out = sh(f"docker image inspect -f '{{{{index .RepoDigests 0}}}}' {image}").stdout
        assert out.strip().endswith(expected)

    ours = record("resolve.module", "resolve", "resolve_digest, 200 MB image (module code, in process)",
                  [timed(module_in_process) for _run in range(RUNS)])  # fmt: skip
    adhoc = record("resolve.ad_hoc", "resolve", "resolve_digest, 200 MB image (ansible localhost -m, whole command)",
                   [timed(module_ad_hoc) for _run in range(RUNS)])  # fmt: skip
    peer = record("resolve.skopeo", "resolve", "peer: skopeo inspect", [timed(skopeo) for _run in range(RUNS)])
    manual = record("resolve.pull_inspect", "resolve", "peer: docker pull + docker inspect (the manual way)",
                    [timed(pull_inspect) for _run in range(RUNS)])  # fmt: skip
    sh(f"docker image rm -f {image} >/dev/null 2>&1 || true")

    ratio = ours["median"] / peer["median"]
    target("resolve within 1.5x of skopeo inspect", ratio <= 1.5,
           f"module {ratio:.2f}x skopeo; as a whole ansible command {adhoc['median'] / peer['median']:.1f}x "
           "(Ansible's own start-up, paid once per task)")  # fmt: skip
    speedup = manual["median"] / ours["median"]
    target("at least 20x faster than pull+inspect (200 MB)", speedup >= 20,
           f"{speedup:.0f}x (module), {manual['median'] / adhoc['median']:.1f}x (whole ansible command)")  # fmt: skip

    tags = ensure_many_tags(100)
    one_call = []
    single_calls = []
    for _run in range(RUNS):
        durations = task_seconds(play_json(ROOT / "bench/playbooks/resolve_peers.yml", {"bench_images": tags}))
        one_call.append(durations["Peer | one call with images"])
        single_calls.append(durations["Peer | one call per tag"])
    in_process = [timed(lambda: resolve(module_params(images=tags))) for _run in range(RUNS)]
    many = record("resolve.100_one_call", "resolve", "100 tags, one resolve_digest call (task time)", one_call)
    record("resolve.100_one_call_module", "resolve", "100 tags, one call (module code, in process)", in_process)
    loop = record("resolve.100_single_calls", "resolve", "peer: 100 tags, one task per tag in a loop (task time)",
                  single_calls)  # fmt: skip
    target("100 tags in one call under 2 s", many["median"] < 2.0,
           f"{many['median']:.2f} s as a task ({loop['median'] / many['median']:.0f}x faster than the loop)")  # fmt: skip


# ------------------------------------------------------------------ 2. drift on one host
def bench_drift_one_host() -> None:
    node, count = TEST_NODE, 50
    print(f"\n2. Drift check, one host with 50 containers ({node})")
    digest = registry_digest("v1")
    image = f"{APP_REPO}@{digest}"
    names = [f"bench-drift-{i:02d}" for i in range(count)]
    node_sh(node, f"docker pull -q {image} >/dev/null")
    node_sh(node, "docker ps -aq --filter label=pinned.release.bench | xargs -r docker rm -f >/dev/null")
    node_sh(node, "set -e; for n in " + " ".join(names) + f"; do docker run -d --name $n --label pinned.release.bench=drift"
            f" --memory 32m {image} >/dev/null; done", timeout=600)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            healthy = node_sh(node, "docker ps -q --filter label=pinned.release.bench --filter health=healthy | wc -l")
            if int(healthy.stdout) == count:
                break
            time.sleep(2)
        extra = {
            "bench_host": node,
            "bench_image": image,
            "bench_containers": [{"name": n, "image": image} for n in names],
        }
        ours, info_loop, shell_loop = [], [], []
        for _run in range(RUNS):
            durations = task_seconds(play_json(ROOT / "bench/playbooks/drift_peers.yml", extra))
            ours.append(durations["Peer | pinned.release.verify_container with a selector"])
            info_loop.append(durations["Peer | community.docker.docker_container_info in a loop"])
            shell_loop.append(durations["Peer | docker inspect in a shell loop"])
        verify = record(
            "drift.verify_container", "drift", "verify_container, 50 containers, selector (task time)", ours
        )
        info = record("drift.container_info_loop", "drift", "peer: docker_container_info loop over 50 (task time)",
                      info_loop)  # fmt: skip
        record("drift.docker_inspect_loop", "drift", "peer: docker inspect shell loop over 50 (task time)", shell_loop)
        target("drift: 50 containers under 2 s", verify["median"] < 2.0, f"{verify['median']:.2f} s as a task over SSH")
        target("drift: at least 5x faster than the docker_container_info loop",
               info["median"] / verify["median"] >= 5, f"{info['median'] / verify['median']:.1f}x")  # fmt: skip
    finally:
        node_sh(
            node, "docker ps -aq --filter label=pinned.release.bench | xargs -r docker rm -f >/dev/null", check=False
        )


# ------------------------------------------------------------------ workspaces with many tenants
def workspace(per_node: dict, scratch: Path) -> Workspace:
    """A copy of the lab inventory whose nodes carry per_node[node] generated tenants."""
    space = make_workspace(scratch / "-".join(f"{n}{c}" for n, c in per_node.items()))
    directory = space.directory
    for node, count in per_node.items():
        tenants = [
            {
                "name": f"{node}t{i:02d}",
                "domain": f"{node}t{i:02d}.bench.lab",
                "port": 3100 + i,
                "env": {"WEBUI_NAME": f"Bench {node} {i}"},
                "secrets": {"WEBUI_SECRET_KEY": f"bench-secret-{node}-{i:02d}"},
                "memory": "64m",
            }
            for i in range(count)
        ]
        (directory / f"host_vars/{node}.yml").write_text(yaml.safe_dump({"release_tenants": tenants}))
    return space


def must(run, what: str) -> None:
    if run.returncode != 0:
        raise SystemExit(f"bench: {what} failed:\n{run.output[-4000:]}")


def bench_fleet(scratch: Path) -> None:
    print("\n3. Fleet drift check: 3 nodes x 20 tenants, drift.yml")
    lab_script("reset-tenants")
    space = workspace(dict.fromkeys(NODES, 20), scratch)
    space.cycle("v1", "-e", "tenant_batch=20")  # setting up 60 tenants
    samples = []
    for _run in range(RUNS):
        start = time.perf_counter()
        run = space.play("playbooks/drift.yml")
        samples.append(time.perf_counter() - start)
        must(run, "drift.yml on the fleet")
    record("fleet.drift_yml", "fleet", "drift.yml, 3 nodes x 20 tenants (wall)", samples)


# ------------------------------------------------------------------ 4-6. rollout, unavailability, re-run, rollback
class RequestLoop(threading.Thread):
    """Requests a tenant through its node's nginx every 20 ms: counts errors and 502s apart from the maintenance
    answer (503 with Retry-After), and the longest time between two good answers."""

    def __init__(self, http_port: int, domain: str) -> None:
        super().__init__(daemon=True)
        self.url, self.domain = f"http://127.0.0.1:{http_port}/health", domain
        self.stop = threading.Event()
        self.requests = self.errors = self.maintenance = 0
        self.longest_gap_ms = 0.0

    def run(self) -> None:
        last_ok = time.perf_counter()
        while not self.stop.is_set():
            self.requests += 1
            status, retry_after = -1, None
            try:
                request = urllib.request.Request(self.url, headers={"Host": self.domain})  # noqa: S310 - the lab node
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as error:
                status, retry_after = error.code, error.headers.get("Retry-After")
            except (urllib.error.URLError, OSError):
                status = -1
            now = time.perf_counter()
            if status == 200:
                self.longest_gap_ms = max(self.longest_gap_ms, (now - last_ok) * 1000)
                last_ok = now
            elif status == 503 and retry_after:
                self.maintenance += 1
            else:
                self.errors += 1
            time.sleep(0.02)


def manual_rollout(digest_from: str, digest_to: str, count: int, careful: bool) -> float:
    """The manual way on prod1 then prod2: pull, then per tenant docker stop/rm/run; careful also waits for each
    tenant to answer its health check before the next one (what a careful operator does)."""
    run_args = "--restart unless-stopped --memory 64m -e WEBUI_SECRET_KEY=manual-secret"
    wait = "; until curl -fs -o /dev/null http://127.0.0.1:42$i/health; do sleep 0.1; done" if careful else ""
    for node in PRODUCTION:
        node_sh(node, f"docker image rm {APP_REPO}@{digest_to} >/dev/null 2>&1 || true")
        node_sh(
            node,
            "docker ps -aq --filter label=bench.manual | xargs -r docker rm -f >/dev/null; rm -rf /opt/bench-manual",
        )
        node_sh(node, f"set -e; for i in $(seq -w 0 {count - 1}); do mkdir -p /opt/bench-manual/$i; docker run -d "
                f"--name manual-$i --label bench.manual=1 -p 127.0.0.1:42$i:8080 {run_args} "
                f"-v /opt/bench-manual/$i:/app/backend/data {APP_REPO}@{digest_from} >/dev/null; done")  # fmt: skip
    start = time.perf_counter()
    for node in PRODUCTION:
        node_sh(node, f"set -e; docker pull -q {APP_REPO}@{digest_to} >/dev/null; for i in $(seq -w 0 {count - 1}); do "
                f"docker stop -t 10 manual-$i >/dev/null && docker rm manual-$i >/dev/null && docker run -d "
                f"--name manual-$i --label bench.manual=1 -p 127.0.0.1:42$i:8080 {run_args} "
                f"-v /opt/bench-manual/$i:/app/backend/data {APP_REPO}@{digest_to} >/dev/null{wait}; done", timeout=600)  # fmt: skip
    elapsed = time.perf_counter() - start
    for node in PRODUCTION:
        node_sh(
            node,
            "docker ps -aq --filter label=bench.manual | xargs -r docker rm -f >/dev/null; rm -rf /opt/bench-manual",
        )
    return elapsed


def restart_to_ready(digest: str) -> tuple:
    """The app's own time from docker run to answering its health check, and to Docker calling it healthy."""
    node = PRODUCTION[0]
    node_sh(node, "docker rm -f bench-restart >/dev/null 2>&1 || true")
    out = node_sh(node, f"s=$(date +%s.%N); docker run -d --name bench-restart --memory 64m -p 127.0.0.1:4299:8080 "
                  f"{APP_REPO}@{digest} >/dev/null; until curl -fs -o /dev/null http://127.0.0.1:4299/health; do sleep 0.02; done; "
                  "r=$(date +%s.%N); until [ \"$(docker inspect -f '{{.State.Health.Status}}' bench-restart)\" = healthy ]; "
                  "do sleep 0.05; done; h=$(date +%s.%N); echo $s $r $h").stdout.split()  # fmt: skip
    node_sh(node, "docker rm -f bench-restart >/dev/null")
    begin, ready, healthy = map(float, out)
    return ready - begin, healthy - begin


def bench_rollout(scratch: Path) -> None:
    print("\n4. Production rollout 2 hosts x 10 tenants v1 -> v2, unavailability, idempotent re-run, rollback")
    per_host = 10
    lab_script("reset-tenants")
    space = workspace({TEST_NODE: 1} | dict.fromkeys(PRODUCTION, per_host), scratch)
    v1 = space.cycle("v1", "-e", f"tenant_batch={per_host}")
    watched = {"node": PRODUCTION[0], "domain": f"{PRODUCTION[0]}t00.bench.lab"}
    ours, plain, careful, rerun, rollback, errors, maintenance, gaps, changed, ready, healthy = (
        [] for _figure in range(11)
    )
    for _run in range(RUNS):
        v2 = space.release("v2")
        plain.append(manual_rollout(v1, v2, per_host, careful=False))
        careful.append(manual_rollout(v1, v2, per_host, careful=True))
        app_ready, app_healthy = restart_to_ready(v1)
        ready.append(app_ready)
        healthy.append(app_healthy)
        for node in PRODUCTION:
            node_sh(node, f"docker image rm {APP_REPO}@{v2} >/dev/null 2>&1 || true")
        must(space.play("playbooks/deploy.yml", "-l", "test"), "test deploy of v2")
        must(space.play("playbooks/promote.yml"), "promote v2")
        loop = RequestLoop(NODES[watched["node"]].http_port, watched["domain"])
        loop.start()
        start = time.perf_counter()
        run, report = space.play_report("playbooks/deploy.yml", "-l", "production")
        ours.append(time.perf_counter() - start)
        loop.stop.set()
        loop.join()
        must(run, "production rollout of v2")
        print_breakdown("the rollout 2x10", rollout_breakdown(report), ours[-1])
        errors.append(loop.errors)
        maintenance.append(loop.maintenance)
        gaps.append(loop.longest_gap_ms)
        start = time.perf_counter()
        again, report = space.play_report("playbooks/deploy.yml", "-l", "production")
        rerun.append(time.perf_counter() - start)
        must(again, "idempotent re-run")
        changed.append(sum(1 for play in report["plays"] for task in play["tasks"]
                           for result in task["hosts"].values() if result.get("changed")))  # fmt: skip
        print_breakdown("the idempotent re-run", rollout_breakdown(report), rerun[-1])
        start = time.perf_counter()
        back, report = space.play_report("playbooks/rollback.yml", "-e", "reason='bench'")
        rollback.append(time.perf_counter() - start)
        must(back, "rollback to v1")
        print_breakdown("the rollback 2x10", rollout_breakdown(report), rollback[-1])
    tenants = 2 * per_host
    ours_f = record("rollout.ours", "rollout", "rollout 2x10 v1->v2, default settings (wall)", ours)
    plain_f = record("rollout.manual", "rollout", "peer: shell loop stop/rm/run per tenant, no checks (wall)", plain)
    careful_f = record(
        "rollout.careful", "rollout", "peer: careful loop, waits for each tenant's health (wall)", careful
    )
    ready_f = record("rollout.app_ready", "rollout", "the app's own docker run -> answers /health, one tenant", ready)
    record("rollout.app_healthy", "rollout", "  ... -> Docker calls it healthy (its 2 s healthcheck interval)", healthy)
    overhead = [(o / tenants) - a for o, a in zip(ours, ready)]
    overhead_f = record(
        "rollout.overhead_per_tenant", "rollout", "our per-tenant time above the app's restart-to-ready", overhead
    )
    record("unavailability.errors", "unavailability", "connection errors and 502s to one tenant during its upgrade",
           errors, unit="count")  # fmt: skip
    record("unavailability.maintenance", "unavailability", "503 + Retry-After answers (the maintenance page) meanwhile",
           maintenance, unit="count")  # fmt: skip
    gap_f = record("unavailability.longest_gap", "unavailability", "longest gap between good answers (request every 20 ms)",
                   gaps, unit="ms")  # fmt: skip
    rollback_f = record("rollback.wall", "rollback", "rollback.yml 2x10 to v1 across the migration (wall)", rollback)
    rerun_f = record("idempotent.wall", "idempotent", "deploy.yml -l production, nothing to change (wall)", rerun)
    per_tenant_f = record(
        "idempotent.per_tenant", "idempotent", "  ... per tenant (20 tenants)", [r / tenants for r in rerun]
    )
    to_plain, to_careful = ours_f["median"] / plain_f["median"], ours_f["median"] / careful_f["median"]
    target("rollout at most 2x the plain stop/rm/run loop", to_plain <= 2.0, f"{to_plain:.2f}x")
    target("rollout at most 1.2x the careful loop that waits for health", to_careful <= 1.2, f"{to_careful:.2f}x")
    target("per-tenant time above the app's restart-to-ready at most 1.0 s", overhead_f["median"] <= 1.0,
           f"{overhead_f['median']:.2f} s (the app itself: {ready_f['median']:.2f} s to answer /health)")  # fmt: skip
    target(
        "rollback 2x10 across a data migration under 30 s", rollback_f["median"] < 30, f"{rollback_f['median']:.1f} s"
    )
    target("idempotent re-run at most 0.3 s per tenant, changed=0", per_tenant_f["median"] <= 0.3 and max(changed) == 0,
           f"{per_tenant_f['median']:.2f} s per tenant ({rerun_f['median']:.1f} s for 20, changed={max(changed)})")  # fmt: skip
    target("one tenant during its upgrade: no connection error or 502 (only 503 + Retry-After)", max(errors) == 0,
           f"{max(errors)} errors/502s at most, {statistics.median(maintenance):.0f} maintenance answers (median)")  # fmt: skip
    target("longest gap at most the app's own start + 1 s", gap_f["median"] <= (ready_f["median"] + 1) * 1000,
           f"{gap_f['median']:.0f} ms against {(ready_f['median'] + 1) * 1000:.0f} ms")  # fmt: skip


# ------------------------------------------------------------------ 5. the real Open WebUI
OPENWEBUI_OLD, OPENWEBUI_NEW = "0.12.0", "0.12.4"
OPENWEBUI_REPO = f"{REGISTRY}/pinned/open-webui"


def openwebui_restart_to_ready(node: str, tenant: dict) -> float:
    """docker restart of a real tenant until its /health answers 200 through nginx."""
    out = node_sh(node, f"s=$(date +%s.%N); docker restart openwebui-{tenant['name']} >/dev/null; "
                  f"until curl -fs -o /dev/null -H 'Host: {tenant['domain']}' http://127.0.0.1/health; do sleep 0.1; done; "
                  "e=$(date +%s.%N); echo $s $e", timeout=600).stdout.split()  # fmt: skip
    begin, end = map(float, out)
    return end - begin


def openwebui_manual_upgrade(node: str, old: str, new: str) -> float:
    """The app's own upgrade by hand, the peer of ours: a tenant of ``old`` with data, stopped, ``new`` started on the
    same data (its migrations run), until /health answers. Seconds from the stop to the answer."""
    node_sh(
        node, "docker rm -f bench-upgrade >/dev/null 2>&1; rm -rf /tmp/bench-upgrade && mkdir -p /tmp/bench-upgrade"
    )
    run = ("docker run -d --name bench-upgrade -p 127.0.0.1:4298:8080 -v /tmp/bench-upgrade:/app/backend/data "
           "-e WEBUI_SECRET_KEY=bench-upgrade-key")  # fmt: skip
    wait = "until curl -fs -o /dev/null http://127.0.0.1:4298/health; do sleep 0.1; done"
    node_sh(node, f"{run} {OPENWEBUI_REPO}:{old} >/dev/null && {wait}", timeout=600)
    out = node_sh(node, f"s=$(date +%s.%N); docker stop bench-upgrade >/dev/null && docker rm bench-upgrade >/dev/null && "
                        f"{run} {OPENWEBUI_REPO}:{new} >/dev/null && {wait}; e=$(date +%s.%N); echo $s $e",
                  timeout=600).stdout.split()  # fmt: skip
    node_sh(node, "docker rm -f bench-upgrade >/dev/null; rm -rf /tmp/bench-upgrade")
    begin, end = map(float, out)
    return end - begin


def openwebui_rss_mib(node: str) -> list:
    """Resident memory of each real tenant container on a node, in MiB (docker stats)."""
    lines = node_sh(node, "docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "
                          "$(docker ps -q --filter label=pinned.release.managed)").stdout.splitlines()  # fmt: skip
    sizes = []
    for line in lines:
        used = line.split()[1]
        number = float(re.match(r"[0-9.]+", used).group(0))
        sizes.append(number / 1024 if used.endswith("KiB") else number * 1024 if used.endswith("GiB") else number)
    return sizes


def bench_openwebui(scratch: Path) -> None:
    count = sum(len(TENANTS[node]) for node in PRODUCTION)
    print(f"\n5. The real Open WebUI: {count} production tenants on {len(PRODUCTION)} hosts, "
          f"{OPENWEBUI_OLD} -> {OPENWEBUI_NEW} (database migrations) and back")  # fmt: skip
    lab_script("reset-tenants")
    space = make_workspace(scratch / "openwebui", app="open-webui")
    space.cycle(OPENWEBUI_OLD)
    node, tenant = PRODUCTION[0], TENANTS[PRODUCTION[0]][0]
    restarts = [openwebui_restart_to_ready(node, tenant) for _run in range(RUNS)]
    ready = record("openwebui.restart_to_ready", "openwebui", "restart of one tenant to /health 200 through nginx",
                   restarts)  # fmt: skip
    rss = [size for host in PRODUCTION for size in openwebui_rss_mib(host)]
    record(
        "openwebui.rss_per_tenant", "openwebui", f"resident memory per idle tenant ({OPENWEBUI_OLD})", rss, unit="MiB"
    )
    by_hand = record("openwebui.upgrade_by_hand", "openwebui",
                     f"peer: the app's own upgrade by hand (stop {OPENWEBUI_OLD}, run {OPENWEBUI_NEW} on its data, to /health)",
                     [openwebui_manual_upgrade(node, OPENWEBUI_OLD, OPENWEBUI_NEW) for _run in range(RUNS)])  # fmt: skip
    space.release(OPENWEBUI_NEW)
    for playbook, args in (("playbooks/deploy.yml", ["-l", "test"]), ("playbooks/promote.yml", [])):
        must(space.play(playbook, *args), f"{playbook} {args}")
    started = time.monotonic()
    run, report = space.play_report("playbooks/deploy.yml", "-l", "production")
    upgrade = time.monotonic() - started
    must(run, "the upgrade to production")
    print_breakdown("the upgrade", rollout_breakdown(report), upgrade)
    up = record("openwebui.upgrade", "openwebui", f"deploy.yml -l production, {count} tenants, with migration (wall)",
                [upgrade])  # fmt: skip
    started = time.monotonic()
    run, report = space.play_report("playbooks/rollback.yml", "-l", "production", "-e", "reason='bench'")
    rollback = time.monotonic() - started
    must(run, "the rollback")
    print_breakdown("the rollback", rollout_breakdown(report), rollback)
    back = record("openwebui.rollback", "openwebui", f"rollback.yml -l production, {count} tenants, restoring (wall)",
                  [rollback])  # fmt: skip
    above = record("openwebui.upgrade_per_tenant", "openwebui", "  ... per tenant, above the app's own upgrade by hand",
                   [upgrade / count - by_hand["median"]])  # fmt: skip
    per_rollback = record("openwebui.rollback_per_tenant", "openwebui", "  ... rollback per tenant", [rollback / count])
    restore = results["breakdowns"]["the rollback"]["median"].get("restore_s", 0.0)
    target("real app: our time per tenant above the app's own upgrade by hand at most 3 s", above["median"] <= 3,
           f"{above['median']:.2f} s ({upgrade / count:.1f} s per tenant against {by_hand['median']:.1f} s by hand)")  # fmt: skip
    target("real app: rollback per tenant at most its restore + the app's restart-to-ready + 2 s",
           per_rollback["median"] <= restore + ready["median"] + 2,
           f"{per_rollback['median']:.1f} s against {restore:.1f} + {ready['median']:.1f} + 2 s")  # fmt: skip
    print(f"upgrade {up['median']:.1f} s, rollback {back['median']:.1f} s for {count} tenants")


# ------------------------------------------------------------------ 6. the cost curve: 3, 10 and 20 hosts
SCALE_SIZES = tuple(int(n) for n in os.environ.get("BENCH_SCALE_HOSTS", "3,10,20").split(","))
SCALE_TENANTS = 5
SCALE_WAVES = json.dumps({"release_waves": [1, "25%", "100%"]})
SCALE_ENV = {"ANSIBLE_FORKS": "25"}  # docs/scale.md: forks at least the largest wave
SCALE_OPERATIONS = ("rollout", "idempotent re-run", "drift", "rollback")
# The stand-in's calm1 -> calm2 (v1 -> v2 with Docker's default 30 s healthcheck interval): 100 tenants checked every
# 2 s would spend the 2 CPUs the lab's 20 nodes share on healthcheck execs, which real hosts, each with its own, do not.


def proportional_mib(pid: int) -> float:
    """A process's proportional set size in MiB: its own pages, and its share of those it shares (Ansible's forks share
    most of theirs with the process they were forked from, so summing their resident sizes would count them again)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(root: int) -> list:
    """``root`` and every process below it. By parent, not by process group: Ansible's workers start sessions of
    their own, so a process-group sum sees only ansible-playbook itself (57 MiB where the forks bring it to 500)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = []
    for pid in parents:
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            found.append(pid)
    return found


def machine_cpu_seconds() -> float:
    """CPU seconds every CPU of this machine has spent working since boot (the lab's nodes are containers on it)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measured_run(command: list, env: dict, cwd: Path) -> dict:
    """Run a command; its output, wall seconds, the controller's peak memory (MiB: the command and every process below
    it, Ansible's forks and their SSH clients, proportional set sizes summed every 0.1 s), the controller's CPU
    seconds (the command and the children it waited for) and the rest of the machine's (the lab's nodes)."""
    with tempfile.TemporaryFile("w+") as log:
        cpu_before, start = machine_cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        peak, status, usage = 0.0, None, None
        while status is None:
            total = 0.0
            for pid in descendants(proc.pid):
                try:
                    total += proportional_mib(pid)
                except OSError:
                    continue  # a process that ended meanwhile
            peak = max(peak, total)
            pid, code, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, usage = os.waitstatus_to_exitcode(code), rusage
                proc.returncode = status
            else:
                time.sleep(0.1)
        wall, machine = time.perf_counter() - start, machine_cpu_seconds() - cpu_before
        controller = usage.ru_utime + usage.ru_stime
        log.seek(0)
        return {"returncode": status, "output": log.read(), "wall": wall, "peak_mib": peak,
                "controller_cpu": controller, "hosts_cpu": max(machine - controller, 0.0)}  # fmt: skip


def scale_workspace(size: int, scratch: Path) -> Workspace:
    """The fleet's test node and its first ``size`` production nodes, SCALE_TENANTS stand-in tenants on each."""
    space = fleet_workspace(scratch / f"scale-{size}", size)
    for node in space.nodes:
        tenants = [
            {"name": f"s{i}-{node}", "domain": f"s{i}.{node}.scale.lab", "port": 3101 + i,
             "env": {"WEBUI_NAME": f"Scale {node} {i}"}, "secrets": {"WEBUI_SECRET_KEY": f"scale-secret-{node}-{i}"},
             "memory": "64m"}
            for i in range(SCALE_TENANTS if node != "test1" else 1)
        ]  # fmt: skip
        (space.directory / f"host_vars/{node}.yml").write_text(yaml.safe_dump({"release_tenants": tenants}))
    return space


def bench_scale(scratch: Path) -> None:
    largest = max(SCALE_SIZES)
    print(f"\n6. The cost curve: rollout, re-run, drift, rollback at {', '.join(map(str, SCALE_SIZES))} production hosts "
          f"x {SCALE_TENANTS} stand-in tenants (calm1 -> calm2, waves [1, 25%, 100%], forks 25)")  # fmt: skip
    ensure_fleet(largest)
    curve: dict = {}
    for size in SCALE_SIZES:
        lab_script("reset-tenants", cell="fleet")
        space = scale_workspace(size, scratch)
        env = dict(space.env(), **SCALE_ENV)
        space.cycle("calm1", "-e", SCALE_WAVES)  # every host on calm1, not measured
        samples: dict = {operation: [] for operation in SCALE_OPERATIONS}
        for _run in range(RUNS):
            space.release("calm2")
            must(space.play("playbooks/deploy.yml", "-l", "test"), "test deploy of calm2")
            must(space.play("playbooks/promote.yml"), "promote calm2")
            steps = {
                "rollout": ("playbooks/deploy.yml", "-l", "production", "-e", SCALE_WAVES),
                "idempotent re-run": ("playbooks/deploy.yml", "-l", "production", "-e", SCALE_WAVES),
                "drift": ("playbooks/drift.yml",),
                "rollback": ("playbooks/rollback.yml", "-e", "reason='bench'", "-e", SCALE_WAVES),
            }
            for operation, (playbook, *args) in steps.items():
                run = measured_run(space.command(playbook, *args), env, ROOT)
                if run["returncode"] != 0:
                    raise SystemExit(f"bench: {operation} on {size} hosts failed:\n{run['output'][-4000:]}")
                samples[operation].append(run)
        curve[size] = {}
        for operation, runs in samples.items():
            key = operation.split()[0]
            label = f"{operation}, {size} hosts x {SCALE_TENANTS}"
            figures = {
                "wall_s": record(f"scale.{key}.{size}", "scale", f"{label} (wall)", [r["wall"] for r in runs]),
                "peak_mib": record(f"scale.{key}.{size}.memory", "scale", "  ... controller peak memory (PSS)",
                                   [r["peak_mib"] for r in runs], unit="MiB"),
                "controller_cpu_s": record(f"scale.{key}.{size}.controller_cpu", "scale", "  ... controller CPU",
                                           [r["controller_cpu"] for r in runs]),
                "hosts_cpu_s": record(f"scale.{key}.{size}.hosts_cpu", "scale", "  ... the lab nodes' CPU",
                                      [r["hosts_cpu"] for r in runs]),
            }  # fmt: skip
            curve[size][operation] = {name: figure["median"] for name, figure in figures.items()}
            curve[size][operation]["per_host_s"] = curve[size][operation]["wall_s"] / size
    results["scale"] = curve
    smallest = min(SCALE_SIZES)
    for operation, limit in (("rollout", 2.5), ("drift", 2.0)):
        ratio = curve[largest][operation]["wall_s"] / curve[smallest][operation]["wall_s"]
        target(f"{operation} of {largest} hosts at most {limit}x the {smallest}-host one", ratio <= limit,
               f"{ratio:.2f}x ({curve[largest][operation]['wall_s']:.1f} s against {curve[smallest][operation]['wall_s']:.1f} s)")  # fmt: skip
    draw_scale(curve)


def draw_scale(curve: dict) -> None:
    """bench/scale.png: wall time and the controller's peak memory against the number of hosts, per operation."""
    try:
        import matplotlib  # here: only make bench installs it (bench/requirements.txt)

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        print("  (no matplotlib: pip install -r bench/requirements.txt to draw bench/scale.png)")
        return
    sizes = sorted(curve)
    figure, (walls, memory) = pyplot.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for operation in SCALE_OPERATIONS:
        walls.plot(sizes, [curve[n][operation]["wall_s"] for n in sizes], marker="o", label=operation)
        memory.plot(sizes, [curve[n][operation]["peak_mib"] for n in sizes], marker="o", label=operation)
    walls.set(title="Wall time", xlabel="production hosts (5 tenants each)", ylabel="seconds", xticks=sizes)
    memory.set(title="Controller peak memory", xlabel="production hosts (5 tenants each)", ylabel="MiB", xticks=sizes)
    for axes in (walls, memory):
        axes.grid(alpha=0.3)
        axes.set_ylim(bottom=0)
        axes.legend(fontsize=8)
    figure.suptitle(f"pinned.release on the lab fleet, {results['measured_at']}, {os.cpu_count()} CPUs", fontsize=10)
    figure.tight_layout()
    figure.savefig(OUT / "scale.png")
    pyplot.close(figure)
    print(f"  drawn: {OUT / 'scale.png'}")


# ------------------------------------------------------------------ output
def markdown() -> str:
    lines = [
        f"Measured {results['measured_at']} on {results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"{RUNS} runs each.",
        "",
        "| section | what | median | min | max |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        unit = row["unit"]
        lines.append(f"| {row['section']} | {row['label'].strip()} | {fmt(row['median'], unit)} | "
                     f"{fmt(row['min'], unit)} | {fmt(row['max'], unit)} |")  # fmt: skip
    lines += ["", "| target | met | where we stand |", "|---|---|---|"]
    for item in results["targets"]:
        lines.append(f"| {item['target']} | {'yes' if item['met'] else '**no**'} | {item['detail']} |")
    return "\n".join(lines) + "\n"


def bench_signature() -> None:
    print("\n6. Signature verification (resolve_digest verify_signature, the lab's signing registry)")
    import signature_cost  # beside this file; it signs the stand-in v1 with the lab's Sigstore tooling first

    found = signature_cost.samples(RUNS)
    for label in ("without", "with"):
        record(f"signature.resolve.{label}", "signature", f"resolve one image, ansible -m, {label} verify_signature",
               found[label]["whole"])  # fmt: skip
    record("signature.verify.warm", "signature", "the verification alone, module code warm",
           [w - o for w, o in zip(found["with"]["warm"], found["without"]["warm"])])  # fmt: skip


def main() -> int:
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "runs": RUNS}
    results["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"make bench: {RUNS} runs per figure on the lab (BENCH_RUNS to change)")
    sections = ONLY or {"resolve", "drift", "fleet", "rollout", "openwebui", "signature"}  # scale runs when named
    with tempfile.TemporaryDirectory(prefix="pinned-bench-") as scratch:
        try:
            if "resolve" in sections:
                bench_resolve()
            if "drift" in sections:
                bench_drift_one_host()
            if "fleet" in sections:
                bench_fleet(Path(scratch))
            if "rollout" in sections:
                bench_rollout(Path(scratch))
            if "openwebui" in sections:
                bench_openwebui(Path(scratch))
            if "signature" in sections:
                bench_signature()
            if "scale" in sections:
                bench_scale(Path(scratch))
        finally:
            if "scale" in sections and FLEET_INVENTORY.exists():
                lab_script("reset-tenants", cell="fleet")
            lab_script("reset-tenants")
            lab_script("release-tag", "v1")
            lab_script("release-tag", OPENWEBUI_OLD)
    written = []
    if "scale" in sections:
        scale = {key: results[key] for key in ("machine", "measured_at", "scale")} | {
            "targets": [t for t in results["targets"] if " hosts at most " in t["target"]],
            "figures": {k: v for k, v in results["figures"].items() if k.startswith("scale.")},
        }
        (OUT / "scale.json").write_text(json.dumps(scale, indent=2) + "\n")
        written.append(OUT / "scale.json")
    if sections - {"scale"}:  # a scale-only run leaves the other sections' results as they were
        (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (OUT / "results.md").write_text(markdown())
        written += [OUT / "results.json", OUT / "results.md"]
    print("\n" + markdown())
    print(f"written: {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
