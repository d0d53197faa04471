# SPDX-License-Identifier: GPL-3.0-or-later
"""What verify_signature adds to one resolve: resolve_digest with and without it, on the lab's signing registry.

    python bench/signature_cost.py [RUNS]

Signs the stand-in v1 once (lab/lab.sh sign, into a repository of its own), then times RUNS resolves each way:
the whole `ansible localhost -m pinned.release.resolve_digest` command (a fresh Python per run, as a playbook task
has: sigstore-python's import is paid every time) and the module code in process (the verification alone, warm).
Prints medians; make bench's signature section records the same samples (BENCH_ONLY=signature).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.pinned.release.plugins.modules.resolve_digest import run_module  # noqa: E402
from tests.support.lab import LAB_HOME, run, signing_credentials  # noqa: E402

IMAGE = "127.0.0.1:5005/bench/signed:v1"
POLICY = {
    "identities": [{"issuer": "https://token.actions.githubusercontent.com", "subject_regexp": r".*"}],
    "trusted_root": str(LAB_HOME / "sigstore/trusted_root.json"),
}


def samples(runs: int) -> dict:
    """{without|with: {whole: [s], warm: [s], first: s}}: RUNS resolves each way (the first in-process call apart)."""
    subprocess.run([str(ROOT / "lab/lab.sh"), "sign", "pinned/openwebui:v1", "--to", "bench/signed"], check=True,
                   capture_output=True)  # fmt: skip
    user, password = signing_credentials()
    base = {"image": IMAGE, "username": user, "password": password}
    params = {"images": None, "platform": None, "docker_config_path": None, "ca_path": None, "validate_certs": True,
              "timeout": 30.0, "retries": 3, "insecure_registries": [], **base}  # fmt: skip
    found = {}
    for label, extra in (("without", {}), ("with", {"verify_signature": POLICY})):
        whole, in_process = [], []
        for _run in range(runs):
            started = time.monotonic()
            result = run(
                ["ansible", "localhost", "-m", "pinned.release.resolve_digest", "-a", json.dumps({**base, **extra})]
            )
            whole.append(time.monotonic() - started)
            assert result.returncode == 0, result.stdout + result.stderr
            options = {**extra.get("verify_signature", {}), "required": True, "max_bundle_bytes": 262144}
            started = time.monotonic()
            run_module({**params, "verify_signature": options if extra else None})
            in_process.append(time.monotonic() - started)
        found[label] = {"whole": whole, "warm": in_process[1:] or in_process, "first": in_process[0]}
    return found


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    found = samples(runs)
    figures = {label: (statistics.median(f["whole"]), statistics.median(f["warm"]), f["first"])
               for label, f in found.items()}  # fmt: skip
    print(f"{runs} runs each, medians (s)         without   with   added")
    for column, name in ((0, "ansible -m (whole command)"), (1, "module code, warm"), (2, "module code, first call")):
        without, with_ = figures["without"][column], figures["with"][column]
        print(f"{name:32} {without:8.2f} {with_:6.2f} {with_ - without:7.2f}")


if __name__ == "__main__":
    main()
