# SPDX-License-Identifier: GPL-3.0-or-later
"""Write docs/inventory-reference.md from the roles' meta/argument_specs.yml (make docs).

Every ``release_*`` variable the roles and playbooks read is listed: those that feed a role
option take its description; the few only playbooks read are described below. A variable read
somewhere but described nowhere stops the generator, so the page cannot fall behind the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs/inventory-reference.md"
ROLES = ["tenant", "test_deploy", "production_deploy", "rollback", "promote", "adopt", "drift"]
RELEASE_VAR = re.compile(r"(?<![\w.$])release_[a-z_]+")

# Read by playbooks, or meaning more than the one role option they feed.
PLAYBOOK_VARIABLES = {
    "release_app_repository": ("all roles, drift.yml", "The image repository tenants run (no tag, no digest)."),
    "release_inventory_dir": (
        "the paths below",
        "Folder of the inventory; anchors the pin and state paths (the implicit localhost has no inventory_dir).",
    ),
    "release_pin_file": (
        "rollback, production_deploy",
        "The pin file, a group_vars file of the production group: written only by promote.yml and rollback.yml.",
    ),
    "release_pin": ("production_deploy, drift, rollback", "Loaded from the pin file: the pinned image and why."),
    "release_pin_history": ("rollback", "Loaded from the pin file: earlier pins, newest first."),
    "release_state_dir": (
        "drift, rollback, notify",
        "Controller folder for drift reports, the fleet page and state.",
    ),
    "release_evidence_dir": ("test_deploy", "Controller folder of the test records, one per digest."),
    "release_pin_targets": ("", "Legacy scripts whose repo@sha256 pins promote.yml rewrites too."),
    "release_pin_on_unpinned": ("", {"module": "pin_digest", "option": "on_unpinned"}),
    "release_waves": (
        "deploy.yml (-e only)",
        "The production rollout's waves, Ansible's serial: host counts and percentages, default [1, 5] (a canary "
        "host, then 5 hosts at a time). Ansible reads a play's serial from -e, not from inventory.",
    ),
    "release_max_fail_percentage": (
        "deploy.yml (-e only), production_deploy",
        "The failure budget: the share of a wave's hosts (0-100) that may fail before the rollout stops; default 0, "
        "the first failed host stops it. Ansible reads it from -e, not from inventory.",
    ),
    "release_serial": ("production_deploy (refused)", "Renamed release_waves; a run that still sets it is refused."),
    "release_registry": (
        "",
        "Registry access (username, password from the vault, ca_path) for resolving, pinning and re-pinning.",
    ),
    "release_reason": ("all roles", "Why this run happens; recorded in the lock, audit log and pin history."),
    "release_notify_targets": (
        "notify (every playbook)",
        "Where release events go: webhook, Slack-compatible and e-mail targets (fields: the notify module's targets).",
    ),
    "release_notify_timeout": ("notify", "Seconds each notification target may take (1-60, default 5)."),
    "release_fleet_page": (
        "notify (every playbook)",
        "The fleet page, one static HTML file; default <release_state_dir>/fleet/index.html.",
    ),
}


def variables_read() -> set:
    found = set()
    for folder in ("roles", "playbooks"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".yml", ".j2") and path.is_file():
                found.update(RELEASE_VAR.findall(path.read_text()))
    return found


def cell(text) -> str:
    if isinstance(text, list):
        text = " ".join(text)
    # Ansible's doc markup: plugins (P(fqcn#type)) and modules (M(fqcn)) by name and kind, the rest as code.
    text = re.sub(r"P\(([^)#]*)#([a-z]+)\)", r"the `\1` \2", str(text))
    text = re.sub(r"M\(([^)]*)\)", r"the `\1` module", text)
    text = re.sub(r"(?:RV|[COVIRE])\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|").replace("\n", " ")


def default_of(option: dict) -> str:
    if "default" not in option:
        return "required" if option.get("required") else ""
    return f"`{option['default']}`" if option["default"] not in ("", None) else f"`{option['default']!r}`"


def module_option_text(module: str, option: str) -> str:
    """An option's description and choices, from the module's own DOCUMENTATION."""
    source = (ROOT / f"plugins/modules/{module}.py").read_text()
    doc = yaml.safe_load(source.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])["options"][option]
    text = cell(doc["description"])
    if doc.get("choices"):
        text += (
            f" One of {', '.join(map(str, doc['choices']))} (default {doc.get('default')}), as `{module}`'s `{option}`."
        )
    return text


def render() -> str:
    specs = {role: yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text()) for role in ROLES}
    feeds: dict = {}
    for role, spec in specs.items():
        defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text()) or {}
        for name, option in spec["argument_specs"]["main"]["options"].items():
            for variable in sorted(set(RELEASE_VAR.findall(f"{option.get('default', '')} {defaults.get(name, '')}"))):
                feeds.setdefault(variable, []).append((role, name, option))
    undescribed = sorted(variables_read() - set(feeds) - set(PLAYBOOK_VARIABLES))
    if undescribed:
        raise SystemExit(f"inventory_reference: describe {', '.join(undescribed)} in tools/inventory_reference.py")

    lines = [
        "# Inventory reference",
        "",
        "Generated by `make docs` from the roles' `meta/argument_specs.yml` (`ansible-doc -t role",
        "pinned.release.<role>` shows the same). Do not edit by hand: a unit test fails when it is stale.",
        "",
        "Set `release_*` variables in your inventory (group_vars/host_vars); each role reads them",
        "through its own prefixed options, which you can also set directly for one role.",
        "",
        "## Inventory variables",
        "",
        "| variable | read by | description |",
        "|---|---|---|",
    ]
    for variable in sorted(set(feeds) | set(PLAYBOOK_VARIABLES)):
        options = ", ".join(f"`{role}`: `{name}`" for role, name, _option in feeds.get(variable, []))
        if variable in PLAYBOOK_VARIABLES:  # described for itself: it means more than the one option it feeds
            readers, description = PLAYBOOK_VARIABLES[variable]
            if isinstance(description, dict):  # the module option it feeds describes it
                description = module_option_text(description["module"], description["option"])
            readers = ", ".join(filter(None, [readers, options]))
        else:
            readers, description = options, cell(feeds[variable][0][2].get("description", ""))
        lines.append(f"| `{variable}` | {readers} | {description} |")
    for role, spec in specs.items():
        main = spec["argument_specs"]["main"]
        lines += ["", f"## Role `pinned.release.{role}`", "", cell(main.get("short_description", "")) + ".", ""]
        lines += ["| option | type | default | description |", "|---|---|---|---|"]
        for name, option in main["options"].items():
            kind = option.get("type", "str")
            if option.get("elements"):
                kind += f" of {option['elements']}"
            if option.get("choices"):
                kind += " (" + ", ".join(map(str, option["choices"])) + ")"
            lines.append(f"| `{name}` | {kind} | {cell(default_of(option))} | {cell(option.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        return 0 if OUTPUT.exists() and OUTPUT.read_text() == text else 1
    OUTPUT.write_text(text)
    print(f"written {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
