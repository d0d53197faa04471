# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption: env split, the data mount, published ports, nginx domains per port."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._adopt import (
    data_mount,
    nginx_domains,
    published_ports,
    split_env,
)

IMAGE_ENV = ["PATH=/usr/local/bin:/usr/bin", "PORT=8080", "ENV=prod"]


@pytest.mark.parametrize(
    ("env", "plain", "secret"),
    [
        (["PATH=/usr/local/bin:/usr/bin", "WEBUI_NAME=Acme"], {"WEBUI_NAME": "Acme"}, {}),
        (["WEBUI_SECRET_KEY=k1", "OAUTH_CLIENT_SECRET=s1", "OPENAI_API_KEY=sk", "ADMIN_PASSWORD=p", "HF_TOKEN=t"], {},
         {"WEBUI_SECRET_KEY": "k1", "OAUTH_CLIENT_SECRET": "s1", "OPENAI_API_KEY": "sk", "ADMIN_PASSWORD": "p", "HF_TOKEN": "t"}),
        (["PORT=9090", "ENV=prod"], {"PORT": "9090"}, {}),  # a default the command line changed is the tenant's
        (["webui_secret_key=lower", "MONKEY_BUSINESS=x", "NOVALUE"], {}, {"webui_secret_key": "lower", "MONKEY_BUSINESS": "x"}),
        (["A==b=c"], {"A": "=b=c"}, {}),
    ],
)  # fmt: skip
def test_split_env(env, plain, secret):
    assert split_env(env, IMAGE_ENV) == (plain, secret)


def test_split_env_patterns_can_be_replaced():
    assert split_env(["MONKEY=x", "DB_URL=postgres://u:p@h/db"], [], ("*_URL",)) == (
        {"MONKEY": "x"},
        {"DB_URL": "postgres://u:p@h/db"},
    )


VOLUME = {"Type": "volume", "Name": "acme-data", "Source": "/var/lib/docker/volumes/acme-data/_data",
          "Destination": "/app/backend/data"}  # fmt: skip
BIND_ROOT = {"Type": "bind", "Source": "/srv/acme", "Destination": "/app/backend"}


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        ([VOLUME], {"kind": "volume", "name": "acme-data", "source": VOLUME["Source"], "destination": "/app/backend/data", "subpath": ""}),
        ([BIND_ROOT], {"kind": "bind", "name": None, "source": "/srv/acme", "destination": "/app/backend", "subpath": "data"}),
        ([BIND_ROOT, VOLUME], {"kind": "volume", "name": "acme-data", "source": VOLUME["Source"], "destination": "/app/backend/data", "subpath": ""}),
        ([{"Type": "bind", "Source": "/srv/x", "Destination": "/app/backend/data2"}], None),
        ([], None),
    ],
)  # fmt: skip
def test_data_mount_is_the_deepest_mount_holding_the_data_path(mounts, expected):
    assert data_mount(mounts, "/app/backend/data/") == expected


def test_published_ports():
    bindings = {"8080/tcp": [{"HostIp": "", "HostPort": "3001"}, {"HostIp": "127.0.0.1", "HostPort": "4001"}],
                "9090/tcp": [{"HostIp": "", "HostPort": "9090"}]}  # fmt: skip
    assert published_ports(bindings, 8080) == [
        {"host_ip": "0.0.0.0", "host_port": 3001},  # noqa: S104 - what docker reports
        {"host_ip": "127.0.0.1", "host_port": 4001},
    ]
    assert published_ports({}, 8080) == []


SITE_ACME = """
# acme, by hand
server {
    listen 80;
    server_name acme.example.com www.acme.example.com;
    location / {
        proxy_pass http://127.0.0.1:3001;   # the container
        proxy_set_header Host $host;
    }
    location /ws/socket.io { proxy_pass http://127.0.0.1:3001; }
}
"""
SITE_TWO = """
server { listen 80; server_name globex.example.com; location / { proxy_pass http://localhost:3002/; } }
server { listen 80 default_server; server_name _; return 444; }
server { listen 80; server_name old.globex.example.com; # proxy_pass http://127.0.0.1:9999;
  location / { proxy_pass http://127.0.0.1:3002; } }
upstream remote { server 10.0.0.5:3003; }
server { listen 80; server_name remote.example.com; location / { proxy_pass http://remote; } }
"""


def test_nginx_domains_per_local_port():
    assert nginx_domains({"/etc/nginx/conf.d/acme.conf": SITE_ACME, "/etc/nginx/conf.d/two.conf": SITE_TWO}) == {
        3001: ["acme.example.com", "www.acme.example.com"],
        3002: ["globex.example.com", "old.globex.example.com"],
    }
