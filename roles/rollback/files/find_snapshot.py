#!/usr/bin/env python3
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""On a host: the newest snapshot of a tenant taken before the release it runs now, and the files written since.

Usage: find_snapshot.py TENANT_DIR CONTAINER TARGET_DIGEST   (prints one JSON object)
"""

import glob
import json
import os
import subprocess
import sys


def main(tenant_dir, container, target):
    tenant = os.path.basename(tenant_dir.rstrip("/"))
    result = {"tenant": tenant, "needed": False, "snapshot": None, "taken_at": None, "running_digest": None, "lost_writes": []}
    inspect = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=False)
    if inspect.returncode == 0:
        labels = json.loads(inspect.stdout)[0]["Config"].get("Labels") or {}
        result["running_digest"] = labels.get("pinned.release.digest")
    if result["running_digest"] in (None, target):
        print(json.dumps(result))
        return
    result["needed"] = True
    candidates = []
    for meta_path in glob.glob(os.path.join(tenant_dir, "snapshots", "*.tar.gz.json")):
        with open(meta_path) as handle:
            meta = json.load(handle)
        if meta.get("to_digest") == result["running_digest"] and os.path.exists(meta.get("snapshot", "")):
            # Prefer the snapshot of the upgrade from the target itself.
            candidates.append((meta.get("from_digest") == target, meta.get("taken_at", ""), meta))
    if candidates:
        meta = max(candidates, key=lambda c: (c[0], c[1]))[2]
        result["snapshot"], result["taken_at"] = meta["snapshot"], meta.get("taken_at")
        since = os.path.getmtime(meta["snapshot"])
        data = os.path.join(tenant_dir, "data")
        for root, _dirs, files in os.walk(data):
            for name in files:
                path = os.path.join(root, name)
                if os.path.getmtime(path) > since:
                    result["lost_writes"].append(os.path.relpath(path, data))
        result["lost_writes"].sort()
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
