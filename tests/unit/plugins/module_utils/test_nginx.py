# SPDX-License-Identifier: GPL-3.0-or-later
"""nginx sites: what they say, what is refused, and a change that nginx rejects undone file by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    Nginx,
    NginxError,
    proxy_problem,
    render_common,
    render_site,
    tls_problem,
)

APP = {"client_max_body_size": "100m", "proxy_read_timeout": "3600s", "websocket_path": "/ws/socket.io"}
SPEC = {"name": "acme", "domain": "acme.example", "port": 3001, "container": "openwebui-acme"}


def test_a_plain_site_streams_upgrades_and_answers_503_while_replaced():
    site = render_site(SPEC, APP)
    for line in (
        "listen 80;", "server_name acme.example;", "proxy_pass http://127.0.0.1:3001;", "proxy_buffering off;",
        "proxy_request_buffering off;", "gzip off;", 'add_header X-Accel-Buffering "no" always;',
        "proxy_read_timeout 3600s;", "location /ws/socket.io {", 'proxy_set_header Connection "upgrade";',
        "error_page 502 504 = @pinned_release_maintenance;", "add_header Retry-After 5 always;", "return 503 ",
    ):  # fmt: skip
        assert line in site, line
    assert "ssl" not in site


def test_a_tls_site_redirects_http_and_names_its_files():
    site = render_site({**SPEC, "tls_cert": "/etc/ssl/acme.pem", "tls_key": "/etc/ssl/acme.key"}, APP, 80, 443)
    assert "return 301 https://$host$request_uri;" in site
    assert "listen 443 ssl http2;" in site
    assert "ssl_certificate /etc/ssl/acme.pem;" in site
    assert "ssl_certificate_key /etc/ssl/acme.key;" in site


def test_a_site_logs_to_the_tenants_own_access_log_when_a_folder_is_given():
    assert "access_log" not in render_site(SPEC, APP)
    site = render_site(SPEC, APP, 80, 443, "/var/log/nginx/")
    assert f"    access_log /var/log/nginx/pinned-release-{SPEC['name']}.access.log;" in site.splitlines()


def test_the_common_file_has_the_map_and_a_default_server_for_unknown_names():
    common = render_common(default_server=True, tls=True)
    assert "map $http_upgrade $pinned_release_connection_upgrade" in common
    assert "listen 80 default_server;" in common
    assert "return 444;" in common
    assert "ssl_reject_handshake on;" in common
    assert "default_server" not in render_common(default_server=False, tls=True)


@pytest.mark.parametrize(
    ("cert", "key", "problem"),
    [
        (None, None, None),
        ("/etc/ssl/a.pem", "/etc/ssl/a.key", None),
        ("/etc/ssl/a.pem", None, "go together"),
        ("/etc/ssl/a.pem;\n  include /etc/passwd", "/k", "must be an absolute path"),
        ("a.pem", "/k", "must be an absolute path"),
        ("/etc/ssl/../a.pem", "/k", "must be an absolute path"),
        ("/etc/ssl/a b.pem", "/k", "must be an absolute path"),
    ],
)
def test_tls_paths(cert, key, problem):
    found = tls_problem(cert, key)
    assert (found is None) if problem is None else (problem in found), found


@pytest.mark.parametrize(
    ("app", "problem"),
    [
        (APP, None),
        ({**APP, "client_max_body_size": "100m; return 200"}, "client_max_body_size"),
        ({**APP, "proxy_read_timeout": "1h\n"}, "proxy_read_timeout"),
        ({**APP, "websocket_path": "/ws {"}, "websocket_path"),
    ],
)
def test_proxy_settings(app, problem):
    found = proxy_problem(app)
    assert (found is None) if problem is None else (problem in found), found


def nginx(tmp_path, test="true") -> Nginx:
    return Nginx(
        str(tmp_path), test_command=["sh", "-c", test], reload_command=["true"], pid_file=str(tmp_path / "no.pid")
    )


def test_a_rejected_change_puts_every_file_back_and_says_which(tmp_path):
    (tmp_path / "pinned-release-acme.conf").write_text("old acme\n")
    (tmp_path / "pinned-release-gone.conf").write_text("old gone\n")
    (tmp_path / "other.conf").write_text("not ours\n")
    with pytest.raises(NginxError) as error:
        nginx(tmp_path, "echo 'emerg: bad directive' >&2; exit 1").apply({
            "pinned-release-acme.conf": "new acme\n", "pinned-release-new.conf": "new\n", "pinned-release-gone.conf": None,
        })  # fmt: skip
    message = str(error.value)
    assert "new file(s) removed: pinned-release-new.conf" in message
    assert "changed or removed file(s) restored: pinned-release-acme.conf, pinned-release-gone.conf" in message
    assert "emerg: bad directive" in message
    assert (tmp_path / "pinned-release-acme.conf").read_text() == "old acme\n"
    assert (tmp_path / "pinned-release-gone.conf").read_text() == "old gone\n"
    assert not (tmp_path / "pinned-release-new.conf").exists()


def test_an_accepted_change_writes_removes_and_reports_only_real_changes(tmp_path):
    (tmp_path / "pinned-release-acme.conf").write_text("same\n")
    (tmp_path / "pinned-release-gone.conf").write_text("old\n")
    changed = nginx(tmp_path).apply({"pinned-release-acme.conf": "same\n", "pinned-release-gone.conf": None,
                                     "pinned-release-new.conf": "new\n"})  # fmt: skip
    assert changed == ["pinned-release-gone.conf", "pinned-release-new.conf"]
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["pinned-release-acme.conf", "pinned-release-new.conf"]
    assert nginx(tmp_path).apply({"pinned-release-acme.conf": "same\n"}) == []


def test_a_failing_reload_is_an_error(tmp_path):
    broken = Nginx(str(tmp_path), test_command=["true"], reload_command=["false"], pid_file=str(tmp_path / "x"))
    with pytest.raises(NginxError, match="reloading nginx failed"):
        broken.apply({"pinned-release-a.conf": "x\n"})
