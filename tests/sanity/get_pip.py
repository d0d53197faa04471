# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline-friendly stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test downloads get-pip from ci-files.testing.ansible.com, which this
project's machines cannot reach, and the pip bundled with Python 3.11 cannot
verify the index's certificate chain here. ansible-test runs this file as
``__main__`` in the new virtual environment with get-pip's arguments
(``pip==X --no-setuptools --no-wheel``); it lets the project venv's pip (first
``pip`` on PATH, as ``make sanity`` sets it) install them into this
interpreter with ``pip --python``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

# get-pip's own flags mean "do not add setuptools/wheel", plain pip's default.
packages = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
pip = shutil.which("pip")
if pip is None:
    sys.exit("get_pip.py: no pip on PATH to bootstrap this environment with: run it through 'make sanity'")
sys.exit(subprocess.call([pip, "--python", sys.executable, "install", *packages]))
