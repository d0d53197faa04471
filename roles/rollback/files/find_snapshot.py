# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""On a host: whether a tenant needs its data restored to run TARGET, which snapshot, and the files written since.

A tenant that runs TARGET healthily needs nothing. Otherwise the snapshot is the newest one taken when the
tenant was last moved away from TARGET (before the release that migrated its data).

Usage: find_snapshot.py TENANT_DIR CONTAINER TARGET_DIGEST   (prints one JSON object)
"""

import glob
import json
import os
import subprocess
import sys


def running_digest(container):
    """(digest, healthy) of what the container runs: the image's RepoDigests, whoever started it."""
    inspect = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=False)
    if inspect.returncode != 0:
        return None, False
    data = json.loads(inspect.stdout)[0]
    state = data.get("State") or {}
    healthy = state.get("Status") == "running" and (state.get("Health") or {}).get("Status") in ("healthy", None)
    image = subprocess.run(["docker", "image", "inspect", data["Image"]], capture_output=True, text=True, check=False)
    digests = []
    if image.returncode == 0:
        digests = [d.split("@", 1)[1] for d in json.loads(image.stdout)[0].get("RepoDigests") or [] if "@" in d]
    label = (data.get("Config", {}).get("Labels") or {}).get("pinned.release.digest")
    return (label if label in digests or not digests else digests[0]), healthy


def main(tenant_dir, container, target):
    tenant = os.path.basename(tenant_dir.rstrip("/"))
    result = {"tenant": tenant, "needed": False, "snapshot": None, "taken_at": None, "running_digest": None, "lost_writes": []}
    result["running_digest"], healthy = running_digest(container)
    if result["running_digest"] == target and healthy:
        print(json.dumps(result))
        return
    result["needed"] = True
    metas = []
    for meta_path in glob.glob(os.path.join(tenant_dir, "snapshots", "*.tar.gz.json")):
        with open(meta_path) as handle:
            meta = json.load(handle)
        if os.path.exists(meta.get("snapshot", "")):
            metas.append(meta)
    metas.sort(key=lambda m: m.get("taken_at", ""))
    # The data as it was when this tenant was last moved away from the target release.
    away = [m for m in metas if m.get("from_digest") == target and m.get("to_digest") != target]
    if away:
        meta = away[-1]
        result["snapshot"], result["taken_at"] = meta["snapshot"], meta.get("taken_at")
        result["running_digest"] = result["running_digest"] or meta.get("to_digest")
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
