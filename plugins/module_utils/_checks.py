# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP checks (smoke checks, the testing checklist): what each one asks, and whether an answer passes.

A check is one request and what its answer must show::

    name: admin signs in            # shown in results and evidence
    method: POST                    # default GET
    path: /api/v1/auths/signin
    headers: {Authorization: "Bearer ${token}"}
    json_body: {email: "${admin_email}"}   # or body: raw text
    status: 200                     # or a list of accepted codes
    json: {status: true}            # a subset the JSON answer must contain (nested mappings too)
    json_keys: [token]              # keys the JSON answer must have
    contains: "[DONE]"              # text the body must contain
    content_type: text/event-stream
    sse: {min_events: 3, min_spread_ms: 150}   # streamed: events arrive spread over time, not in one lump
    save: {token: token}            # remember answer values (dotted paths; "." the whole answer) as ${token}
    skip_without: [before_token]    # skipped (not failed) when one of these values is not there
    enabled: true                   # false switches an entry off

``${name}`` takes a value given to the run or saved by an earlier check. Values can be secrets (a
password, a token): they are never put in a result; a failed check says what differed, not the body.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import ssl
import time
from typing import Callable, Optional, Protocol

from ansible_collections.pinned.release.plugins.module_utils._checks_oidc import oidc_problems, sign_in
from ansible_collections.pinned.release.plugins.module_utils._format import MEMORY_RE, memory_bytes
from ansible_collections.pinned.release.plugins.module_utils._http import Response, request
from ansible_collections.pinned.release.plugins.module_utils._snapshots import human
from ansible_collections.pinned.release.plugins.module_utils._tls import DEFAULT_MIN_DAYS, expiry_problem

CHECK_KEYS = {
    "name", "method", "path", "headers", "json_body", "body", "status", "json", "json_keys", "contains",
    "content_type", "sse", "save", "skip_without", "enabled", "description", "timeout",
}  # fmt: skip
# The testing checklist's sign-in through an identity provider (_checks_oidc), before the check's own request.
OIDC_CHECK_KEYS = {"oidc"}
# What only the testing checklist can do (it runs beside the engine; smoke checks run inside the transaction):
# judge the tenant's container's isolation, and restart it before the request (persistence across a restart), and
# judge the certificate nginx serves for the tenant (over a real handshake, trusted or not).
CONTAINER_CHECK_KEYS = {"isolation", "restart", "memory", "certificate"}
# Checks that send no request of their own: what else they carry has no use.
NO_REQUEST_KEYS = {"isolation": "an isolation", "memory": "a memory", "certificate": "a certificate"}
MEMORY_CHECK_KEYS = {"max": "700m or 90% (of the container's limit)", "max_growth_percent": "a number, e.g. 10",
                     "passes": "a whole number from 1 to 10"}  # fmt: skip
# Why a container check has no container to act on.
NOT_GIVEN = "(the tenant is not in run_checklist's containers: pass tenant_rollout's tenants result)"
RESTART_WAIT_S = 180
MAX_RESTART_WAIT_S = 3600
MAX_MEMORY_PASSES = 10
# A rise smaller than this is noise (a tiny app's few megabytes), whatever share of it it is.
# Measured on the lab: a 488 KB stand-in rose 1.5 MB after two passes with no leak (the kernel's accounting of the
# processes a request forks), so the floor sits above that.
MEMORY_NOISE_BYTES = 4 * 1024**2
VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")


class CheckSpecError(ValueError):
    """A check entry that cannot be run; the message names the entry and the field."""


def check_problems(checks: object, where: str = "checks", container_checks: bool = False) -> list:
    """One line per problem with a list of checks; empty when every entry can run.

    ``container_checks``: ``isolation`` and ``restart`` are allowed (the testing checklist, not smoke checks).
    """
    known = CHECK_KEYS | CONTAINER_CHECK_KEYS | OIDC_CHECK_KEYS if container_checks else CHECK_KEYS
    if not isinstance(checks, list):
        return [f"{where} must be a list of checks, got {type(checks).__name__}"]
    problems = []
    names = set()
    for index, check in enumerate(checks):
        label = f"{where}[{index}]"
        if not isinstance(check, dict):
            problems.append(f"{label} must be a mapping with name and path, got {type(check).__name__}")
            continue
        label = f"{where}[{index}] ({check.get('name', '?')})"
        unknown = sorted(set(check) - known)
        if unknown:
            problems.append(
                f"{label} has unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
            )
        if not isinstance(check.get("name"), str) or not check.get("name"):
            problems.append(f"{label} needs a name")
        elif check["name"] in names:
            problems.append(f"{label}: the name {check['name']!r} is used twice")
        else:
            names.add(check["name"])
        if check.get("isolation") is not None and not isinstance(check["isolation"], bool):
            problems.append(f"{label}: isolation must be true or false, got {check['isolation']!r}")
        problems += memory_check_problems(check.get("memory"), label)
        if check.get("certificate") not in (None, False) and certificate_min_days(check["certificate"]) is None:
            problems.append(f"{label}: certificate must be true or {{min_days: a whole number of days}}, "
                            f"got {check['certificate']!r}")  # fmt: skip
        kinds = [kind for key, kind in NO_REQUEST_KEYS.items() if check.get(key) not in (None, False)]
        if kinds:
            kind = kinds[0]
            requests = sorted(set(check) - {"name", *NO_REQUEST_KEYS, "enabled", "description"})
            if requests:
                problems.append(
                    f"{label}: {kind} check sends no request of its own, so {', '.join(requests)} has no use"
                )
        elif isinstance(check.get("oidc"), dict) and not check["oidc"].get("subject"):
            unused = sorted(set(check) - {"name", "oidc", "enabled", "description", "skip_without"})
            if unused:
                problems.append(f"{label}: an oidc check without a subject only judges the login redirect, so "
                                f"{', '.join(unused)} has no use (give oidc.subject to sign in and send a request)")  # fmt: skip
        elif not isinstance(check.get("path"), str) or not check.get("path", "").startswith("/"):
            problems.append(f"{label}: path must start with /, got {check.get('path')!r}")
        problems += oidc_problems(check.get("oidc"), label)
        if check.get("restart") is not None and restart_wait(check["restart"]) is None:
            problems.append(f"{label}: restart must be true, false or {{wait: seconds}} (at most {MAX_RESTART_WAIT_S}), "
                            f"got {check['restart']!r}")  # fmt: skip
        elif restart_wait(check.get("restart", False)) and str(check.get("method", "GET")).upper() != "GET":
            problems.append(f"{label}: a restart check is tried until it passes, so its request must be a GET (one that "
                            "writes would write again at every try)")  # fmt: skip
        if str(check.get("method", "GET")).upper() not in METHODS:
            problems.append(f"{label}: method must be one of {', '.join(METHODS)}")
        status = check.get("status", 200)
        statuses = status if isinstance(status, list) else [status]
        if not statuses or not all(_status_number(s) is not None for s in statuses):
            problems.append(f"{label}: status must be an HTTP status code or a list of them, got {status!r}")
        for key, kind in (("json", dict), ("headers", dict), ("save", dict), ("sse", dict), ("json_keys", list),
                          ("skip_without", list)):  # fmt: skip
            if check.get(key) is not None and not isinstance(check[key], kind):
                problems.append(
                    f"{label}: {key} must be a {'mapping' if kind is dict else 'list'}, got {type(check[key]).__name__}"
                )
        for key in ("contains", "content_type", "body", "description"):
            if check.get(key) is not None and not isinstance(check[key], str):
                problems.append(f"{label}: {key} must be text, got {type(check[key]).__name__}")
        problems += _typed_field_problems(check, label)
    return problems


SSE_KEYS = {"min_events": (1, True), "min_spread_ms": (0, False)}  # minimum, whole number


def _number(value: object, whole: bool = False) -> Optional[float]:
    """``value`` as a number (a template may render it as text), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return None if whole and number != int(number) else number


def _typed_field_problems(check: dict, label: str) -> list:
    """Every field with a type beyond "mapping or list": a wrong one fails here, before any tenant stops."""
    problems = []
    if check.get("timeout") is not None:
        timeout = _number(check["timeout"])
        if timeout is None or timeout <= 0:
            problems.append(f"{label}: timeout must be a number of seconds, e.g. 10, got {check['timeout']!r}")
    if check.get("enabled") is not None and not isinstance(check["enabled"], bool):
        problems.append(f"{label}: enabled must be true or false, got {check['enabled']!r}")
    if isinstance(check.get("sse"), dict):
        for key, value in check["sse"].items():
            if key not in SSE_KEYS:
                problems.append(f"{label}: sse has unknown key {key!r}; known: {', '.join(sorted(SSE_KEYS))}")
                continue
            minimum, whole = SSE_KEYS[key]
            number = _number(value, whole)
            if number is None or number < minimum:
                problems.append(f"{label}: sse.{key} must be a {'whole ' if whole else ''}number of at least "
                                f"{minimum}, got {value!r}")  # fmt: skip
    for key in ("json_keys", "skip_without"):
        if isinstance(check.get(key), list) and not all(isinstance(item, str) for item in check[key]):
            problems.append(f"{label}: {key} must be a list of names (text), got {check[key]!r}")
    if isinstance(check.get("save"), dict) and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in check["save"].items()
    ):
        problems.append(f"{label}: save must map variable names to paths in the answer (text), got {check['save']!r}")
    if isinstance(check.get("headers"), dict) and not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in check["headers"].values()
    ):
        problems.append(f"{label}: headers values must be text")
    if check.get("method") is not None and not isinstance(check["method"], str):
        problems.append(f"{label}: method must be text, got {type(check['method']).__name__}")
    return problems


def memory_check_problems(memory: object, label: str) -> list:
    if memory is None:
        return []
    if not isinstance(memory, dict):
        return [f"{label}: memory must be a mapping ({', '.join(sorted(MEMORY_CHECK_KEYS))}), got {memory!r}"]
    problems = [f"{label}: memory has unknown key {key!r}; known: {', '.join(sorted(MEMORY_CHECK_KEYS))}"
                for key in sorted(set(memory) - set(MEMORY_CHECK_KEYS))]  # fmt: skip
    ceiling = memory_ceiling(memory.get("max"), 1024**3)
    if ceiling is None or ceiling <= 0:
        problems.append(f"{label}: memory.max must be {MEMORY_CHECK_KEYS['max']}, got {memory.get('max')!r}")
    growth = _number(memory.get("max_growth_percent", 10))
    if growth is None or growth < 0:
        problems.append(f"{label}: memory.max_growth_percent must be {MEMORY_CHECK_KEYS['max_growth_percent']}, "
                        f"got {memory.get('max_growth_percent')!r}")  # fmt: skip
    passes = _number(memory.get("passes", 1), whole=True)
    if passes is None or not 1 <= passes <= MAX_MEMORY_PASSES:
        problems.append(f"{label}: memory.passes must be {MEMORY_CHECK_KEYS['passes']}, got {memory.get('passes')!r}")
    return problems


def memory_ceiling(value: object, limit: int) -> Optional[int]:
    """Bytes ``max`` allows: ``700m`` as is, ``90%`` of the container's ``limit`` (0: it has none, so 0 here); None
    when ``value`` is neither."""
    text = str(value or "").strip()
    if text.endswith("%"):
        share = _number(text[:-1])
        return None if share is None or not 0 < share <= 100 else int(limit * share / 100)
    return memory_bytes(text) if MEMORY_RE.fullmatch(text) else None


def certificate_min_days(value: object) -> Optional[int]:
    """Days a ``certificate`` check wants left (``true``: 14); None when ``value`` is not one."""
    if value is True:
        return DEFAULT_MIN_DAYS
    if isinstance(value, dict) and set(value) <= {"min_days"}:
        days = _number(value.get("min_days", DEFAULT_MIN_DAYS), whole=True)
        return int(days) if days is not None and days >= 0 else None
    return None


def restart_wait(value: object) -> Optional[float]:
    """Seconds a ``restart`` check waits for its request to pass (0: no restart); None when ``value`` is not one."""
    if isinstance(value, bool):
        return float(RESTART_WAIT_S) if value else 0.0
    if isinstance(value, dict) and set(value) <= {"wait"}:
        wait = _number(value.get("wait", RESTART_WAIT_S))
        return wait if wait is not None and 0 < wait <= MAX_RESTART_WAIT_S else None
    return None


def _status_number(value: object) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
        return int(value)
    return None


def accepted_statuses(check: dict) -> list:
    status = check.get("status", 200)
    return [_status_number(s) for s in (status if isinstance(status, list) else [status])]


def _subset_mismatch(expected: object, actual: object, where: str = "") -> Optional[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"JSON {where or 'body'} is not an object"
        for key, value in expected.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in actual:
                return f"JSON has no {path!r}"
            mismatch = _subset_mismatch(value, actual[key], path)
            if mismatch:
                return mismatch
        return None
    if expected != actual:
        return f"JSON {where!r} is {_shown(actual)}, expected {_shown(expected)}"
    return None


def _shown(value: object) -> str:
    """A value for a message: whole (so a secret in it is masked whole), or only its length when it is long (a cut
    one could show a secret's beginning that no mask recognises)."""
    text = json.dumps(value)
    return text if len(text) <= 80 else f"a value of {len(text)} characters"


def secret_strings(value: object) -> set:
    """Every text of 4 characters or more in a value (a kept answer may hold tokens at any depth)."""
    if isinstance(value, str):
        return {value} if len(value) >= 4 else set()
    if isinstance(value, dict):
        return set().union(*(secret_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_strings(v) for v in value)) if value else set()
    return set()


def dig(data: object, path: str) -> object:
    """``data.0.id`` -> data["data"][0]["id"]; ``.`` -> the whole answer; None when absent."""
    if path == ".":
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def check_outcome(check: dict, response: Response) -> dict:
    """Judge one answer against a check: ``{name, passed, detail}`` (the detail never holds the body)."""
    name = check.get("name") or check.get("path", "?")
    if response.status in (-1, None):
        return {"name": name, "passed": False, "detail": f"no answer: {response.error or 'request failed'}"}
    accepted = accepted_statuses(check)
    if response.status not in accepted:
        wanted = " or ".join(str(s) for s in accepted)
        return {"name": name, "passed": False, "detail": f"HTTP {response.status}, expected {wanted}"}
    if check.get("content_type") and response.content_type != check["content_type"]:
        got = response.content_type or "none"
        return {"name": name, "passed": False, "detail": f"content type {got}, expected {check['content_type']}"}
    body: object = None
    if check.get("json") is not None or check.get("json_keys") or check.get("save"):
        try:
            body = json.loads(response.text)
        except ValueError:
            return {"name": name, "passed": False, "detail": "body is not JSON"}
        mismatch = _subset_mismatch(check["json"], body) if check.get("json") is not None else None
        if mismatch is None and check.get("json_keys"):
            missing = [key for key in check["json_keys"] if not isinstance(body, dict) or key not in body]
            mismatch = f"JSON lacks {', '.join(map(str, missing))}" if missing else None
        if mismatch:
            return {"name": name, "passed": False, "detail": mismatch}
    if check.get("contains") and check["contains"] not in response.text:
        return {"name": name, "passed": False, "detail": f"body does not contain {check['contains']!r}"}
    sse = check.get("sse")
    if sse:
        events = response.events
        spread_ms = (events[-1][0] - events[0][0]) * 1000 if len(events) > 1 else 0.0
        if len(events) < int(float(sse.get("min_events", 2))):
            return {"name": name, "passed": False,
                    "detail": f"{len(events)} streamed event(s), expected at least {sse.get('min_events', 2)}"}  # fmt: skip
        if spread_ms < float(sse.get("min_spread_ms", 0)):
            return {"name": name, "passed": False,
                    "detail": f"the {len(events)} events arrived within {spread_ms:.0f} ms (buffered?), "
                              f"expected spread over at least {sse['min_spread_ms']} ms"}  # fmt: skip
        return {"name": name, "passed": True,
                "detail": f"HTTP {response.status}, {len(events)} events over {spread_ms:.0f} ms"}  # fmt: skip
    return {"name": name, "passed": True, "detail": f"HTTP {response.status}"}


def _fill(value: object, variables: dict, missing: set, typed: bool = False) -> object:
    """``${name}`` replaced by its value as text; ``typed``: a string that is one ``${name}`` of a list or mapping takes
    it as it is (a kept answer sent back in a JSON body); every other value stays text, as it always was."""
    if typed and isinstance(value, str):
        whole = VARIABLE_RE.fullmatch(value)
        if whole and isinstance(variables.get(whole.group(1)), (list, dict)):
            return variables[whole.group(1)]
    if isinstance(value, str):

        def replace(match):
            if match.group(1) not in variables:
                missing.add(match.group(1))
                return match.group(0)
            return str(variables[match.group(1)])

        return VARIABLE_RE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _fill(v, variables, missing, typed) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables, missing, typed) for v in value]
    return value


def certificate_outcome(name: str, spec: object, tls_probe: Optional[Callable],
                        now: Optional[datetime.datetime] = None) -> dict:  # fmt: skip
    """The certificate nginx serves for the tenant: trusted, for its name, with ``min_days`` left at least."""
    if tls_probe is None:
        return {"name": name, "passed": True, "skipped": True,
                "detail": "skipped: the tenant is served over plain HTTP (no tls_cert), so there is no certificate"}  # fmt: skip
    certificate, why = tls_probe()
    if certificate is None:
        return {"name": name, "passed": False, "detail": why}
    min_days = certificate_min_days(spec) or 0
    try:
        not_after = datetime.datetime.fromtimestamp(
            ssl.cert_time_to_seconds(certificate["notAfter"]), datetime.timezone.utc
        )
    except (KeyError, TypeError, ValueError):
        return {"name": name, "passed": False, "detail": "the certificate served has no end date that can be read"}
    now = now or datetime.datetime.now(datetime.timezone.utc)
    issuer = dict(pair[0] for pair in certificate.get("issuer") or () if pair).get("commonName", "an unnamed CA")
    problem = expiry_problem(not_after, now, min_days)
    if problem:
        return {"name": name, "passed": False, "detail": f"trusted, issued by {issuer}, but {problem}",
                "certificate_not_after": f"{not_after:%Y-%m-%dT%H:%M:%SZ}"}  # fmt: skip
    return {"name": name, "passed": True, "certificate_not_after": f"{not_after:%Y-%m-%dT%H:%M:%SZ}",
            "detail": f"trusted, valid for the tenant's domain, issued by {issuer}, {(not_after - now).days} days left "
                      f"(at least {min_days} required)"}  # fmt: skip


def _isolation_outcome(name: str, container: Optional[ContainerHooks]) -> dict:
    if container is None:
        return {
            "name": name,
            "passed": False,
            "detail": f"no container to inspect {NOT_GIVEN}",
        }
    problems = container.isolation()
    if problems:
        return {"name": name, "passed": False, "detail": "; ".join(problems)}
    return {"name": name, "passed": True,
            "detail": "not privileged, its own namespaces, folders and ports, ports on loopback"}  # fmt: skip


def _memory_outcome(check: dict, container: Optional[ContainerHooks], replays: list, send: Callable) -> dict:
    """Memory now (at most ``max``), then after ``passes`` more rounds of the read-only checks that passed above (at
    most ``max_growth_percent`` more). One round shows what a request leaves behind, not a slow leak over days."""
    name, spec = check["name"], check["memory"]
    if container is None:
        return {
            "name": name,
            "passed": False,
            "detail": f"no container to measure {NOT_GIVEN}",
        }
    if not replays:
        return {"name": name, "passed": False,
                "detail": "no read-only (GET) check passed above it, so there is nothing to send again: put it after them"}  # fmt: skip
    before, limit, why = container.memory()
    if not before:
        return {
            "name": name,
            "passed": False,
            "detail": f"memory could not be read: {why or 'the engine reports 0 bytes'}",
        }
    ceiling = memory_ceiling(spec.get("max"), limit)
    passes = int(float(spec.get("passes", 1)))
    for _round in range(passes):
        for url, headers, timeout, server_name in replays:
            send("GET", url, headers=headers, body=None, timeout=timeout, server_name=server_name)
    after, _limit, why = container.memory()
    if not after:
        return {"name": name, "passed": False,
                "detail": f"memory could not be read after the passes: {why or 'the engine reports 0 bytes'}"}  # fmt: skip
    growth = (after - before) * 100.0 / before
    allowed = float(spec.get("max_growth_percent", 10))
    detail = (f"{human(before)} in use, {human(after)} after {passes} more pass(es) of the {len(replays)} read-only "
              f"check(s) above ({growth:+.1f}%)")  # fmt: skip
    outcome = {"name": name, "passed": True, "memory_bytes": before, "memory_after_bytes": after,
               "memory_limit_bytes": limit, "detail": detail}  # fmt: skip
    if not ceiling:
        outcome.update(passed=False, detail=f"{detail}; {spec.get('max')} of nothing: the engine says of no limit, so "
                                            "give memory.max in bytes (e.g. 700m)")  # fmt: skip
    elif max(before, after) > ceiling:
        outcome.update(passed=False, detail=f"{detail}; more than the {human(ceiling)} allowed ({spec.get('max')})")
    elif growth > allowed and after - before >= MEMORY_NOISE_BYTES:
        outcome.update(passed=False, detail=f"{detail}; it grew by more than {allowed:g}%")
    else:
        outcome["detail"] = f"{detail}; at most {human(ceiling)} and +{allowed:g}% allowed"
    return outcome


def tenant_address(port: int, domain: str, tls: bool, nginx_ports: Optional[tuple]) -> tuple:
    """``(base URL, TLS server name)`` that reaches a tenant from its own host: its published port without nginx
    (``nginx_ports`` None), else nginx's HTTPS port (``nginx_ports``: http, https) for a tenant with TLS, its
    domain as the server name, else nginx's HTTP port."""
    if nginx_ports is None:
        return f"http://127.0.0.1:{port}", None
    if tls:
        return f"https://127.0.0.1:{nginx_ports[1]}", domain
    return f"http://127.0.0.1:{nginx_ports[0]}", None


class ContainerHooks(Protocol):
    """What the checklist's container checks do to the tenant's container (run_checklist's engine; a fake in tests)."""

    def isolation(self) -> list:
        """What breaks the container's isolation, one phrase each (empty: nothing)."""

    def restart(self) -> Optional[str]:
        """Restart the container; None when done, else why it could not be."""

    def memory(self) -> tuple:
        """(bytes in use as ``docker stats`` counts them - the page cache it can drop left out - or None, the most it
        may use in bytes - its memory limit, else the host's memory - or 0, why it could not be read or None)."""


def run_checks(checks: list, base_url: str, host_header: Optional[str] = None, server_name: Optional[str] = None,
               variables: Optional[dict] = None, send: Callable = request, container: Optional[ContainerHooks] = None,
               clock: Callable = time.monotonic, sleep: Callable = time.sleep,
               replays: Optional[list] = None, tls_probe: Optional[Callable] = None,
               tenant_values: Optional[dict] = None) -> tuple:  # fmt: skip
    """Run enabled checks in order; returns (outcomes, variables including the saved ones).

    ``send(method, url, headers=, body=, timeout=, server_name=)`` is the HTTP call (a fake in unit tests).
    ``container``: the tenant's container, for ``isolation``, ``restart`` and ``memory`` checks (None: they fail,
    saying so). ``replays``: where the read-only requests that passed are gathered for a memory check (a caller that
    runs one checklist in several calls passes the same list to each). ``tls_probe()``: ``(certificate, why not)`` of
    what nginx serves for the tenant, for ``certificate`` checks (None: the tenant is not served over TLS).
    ``tenant_values``: the tenant's declared env and secrets, where an ``oidc`` check finds its client id.
    """
    values = dict(variables or {})
    secrets = secret_strings(list(values.values()))
    outcomes = []
    replays = [] if replays is None else replays  # the read-only requests that passed, sent again by a memory check
    for check in checks:
        if check.get("enabled", True) is False:
            continue
        absent = [name for name in check.get("skip_without") or [] if values.get(name) in (None, "")]
        if absent:
            outcomes.append({"name": check["name"], "passed": True, "skipped": True,
                             "detail": f"skipped: no {', '.join('${' + n + '}' for n in absent)} (nothing to carry over)"})  # fmt: skip
            continue
        if check.get("isolation"):
            outcomes.append(_isolation_outcome(check["name"], container))
            continue
        if check.get("memory") is not None:
            outcomes.append(_memory_outcome(check, container, replays, send))
            continue
        if check.get("certificate") not in (None, False):
            outcomes.append(certificate_outcome(check["name"], check["certificate"], tls_probe))
            continue
        signed_in = ""
        if check.get("oidc") is not None:
            failure, signed_in, token = sign_in(check["oidc"], base_url, host_header or "", server_name,
                                                tenant_values or {}, send)  # fmt: skip
            if failure or signed_in.startswith("skipped") or token is None:
                skipped = not failure and signed_in.startswith("skipped")
                outcome = {"name": check["name"], "passed": not failure, "detail": failure or signed_in}
                outcomes.append({**outcome, "skipped": True} if skipped else outcome)
                continue
            secrets.add(token)
        missing: set = set()
        path = _fill(check["path"], values, missing)
        headers = {str(k): str(v) for k, v in (_fill(check.get("headers") or {}, values, missing)).items()}
        body = None
        if check.get("json_body") is not None:
            body = json.dumps(_fill(check["json_body"], values, missing, typed=True)).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        elif check.get("body") is not None:
            body = str(_fill(check["body"], values, missing)).encode("utf-8")
        judged = dict(check)
        for key in ("json", "contains"):
            if check.get(key) is not None:
                judged[key] = _fill(check[key], values, missing)
        if missing:
            outcomes.append({"name": check["name"], "passed": False,
                             "detail": f"needs {', '.join('${' + m + '}' for m in sorted(missing))}, "
                                       "which no earlier check or setting provided"})  # fmt: skip
            continue
        if host_header:
            headers.setdefault("Host", host_header)
        if signed_in:
            headers["Authorization"] = f"Bearer {token}"
        method, timeout = str(check.get("method", "GET")).upper(), float(check.get("timeout", 30))
        wait = restart_wait(check.get("restart", False)) or 0.0
        if wait:
            why = f"no container to restart {NOT_GIVEN}" if container is None else container.restart()
            if why:
                outcomes.append({"name": check["name"], "passed": False, "detail": f"restart failed: {why}"})
                continue
        deadline = clock() + wait
        while True:  # after a restart the app takes a while to answer again: the request is tried until it passes
            response = send(method, base_url + path, headers=headers, body=body, timeout=timeout,
                            server_name=server_name)  # fmt: skip
            outcome = check_outcome(judged, response)
            if outcome["passed"] or clock() >= deadline:
                break
            sleep(1.0)
        if wait:
            outcome["detail"] += f" (after a restart, {clock() - deadline + wait:.0f} s)"
        if signed_in:
            outcome["detail"] = f"{signed_in}; {outcome['detail']}"
        outcome["elapsed_ms"] = round(response.elapsed * 1000)
        if outcome["passed"] and method == "GET" and not wait:
            replays.append((base_url + path, headers, timeout, server_name))
        if outcome["passed"] and check.get("save"):
            parsed = json.loads(response.text)
            for variable, path_in_answer in check["save"].items():
                optional = str(path_in_answer).endswith("?")  # "users.0.id?": kept when there, else left unset
                found = dig(parsed, str(path_in_answer).rstrip("?"))
                if found is None and not optional:
                    outcome.update(
                        passed=False, detail=f"the answer has no {path_in_answer!r} to keep as ${{{variable}}}"
                    )
                    break
                if found is not None:
                    values[variable] = found
                    secrets |= secret_strings(found)
        for secret in secrets:
            outcome["detail"] = outcome["detail"].replace(secret, "********")
        outcomes.append(outcome)
    return outcomes, values
