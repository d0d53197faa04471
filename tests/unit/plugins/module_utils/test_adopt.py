# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption: env split, the data mount, published ports, nginx domains per port."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._adopt import (
    adoption_entry,
    data_mount,
    fleet_conflicts,
    nginx_domains,
    nginx_sites,
    nginx_tls,
    published_ports,
    repository_of,
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
        # a URL with userinfo is a secret under any name (a password, or a key as the user: a Sentry DSN); a URL
        # without userinfo is not
        (["DATABASE_URL=postgresql://owui:s3cret@db:5432/owui", "REDIS_URL=redis://:r3dis@cache:6379/0",
          "OLLAMA_BASE_URL=http://ollama:11434", "WEBHOOK=https://0123abcd@example.com/x"],
         {"OLLAMA_BASE_URL": "http://ollama:11434"},
         {"DATABASE_URL": "postgresql://owui:s3cret@db:5432/owui", "REDIS_URL": "redis://:r3dis@cache:6379/0",
          "WEBHOOK": "https://0123abcd@example.com/x"}),
        (["PROXY_AUTH=basic x", "LDAP_AUTH_PASS=p", "HTTP_AUTHORIZATION=Bearer t", "ENABLE_OAUTH_SIGNUP=true"],
         {"ENABLE_OAUTH_SIGNUP": "true"}, {"PROXY_AUTH": "basic x", "LDAP_AUTH_PASS": "p", "HTTP_AUTHORIZATION": "Bearer t"}),
        # a switch is not a secret whatever its name (masking "False" would blank every log line holding it)
        (["WEBUI_AUTH=False", "ENABLE_API_KEY=true", "OPENAI_API_KEY=", "BYPASS_MODEL_ACCESS_CONTROL_TOKEN=1"],
         {"WEBUI_AUTH": "False", "ENABLE_API_KEY": "true", "OPENAI_API_KEY": "", "BYPASS_MODEL_ACCESS_CONTROL_TOKEN": "1"}, {}),
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


def test_nginx_sites_per_local_port():
    sites = {"/etc/nginx/conf.d/acme.conf": SITE_ACME, "/etc/nginx/conf.d/two.conf": SITE_TWO,
             "/etc/nginx/conf.d/also-3001.conf": "server { server_name a; location / { proxy_pass http://[::1]:3001; } }",
             "/etc/nginx/conf.d/default.conf": "server { listen 80 default_server; return 444; }"}  # fmt: skip
    assert nginx_sites(sites) == {
        3001: ["/etc/nginx/conf.d/acme.conf", "/etc/nginx/conf.d/also-3001.conf"],
        3002: ["/etc/nginx/conf.d/two.conf"],
    }


REPO = "registry.example:5000/acme/open-webui"
DIGEST = "sha256:" + "a" * 64
SETTINGS = {"data_path": "/app/backend/data", "container_port": 8080, "secret_key_env": "WEBUI_SECRET_KEY",
            "secret_patterns": ["*KEY*", "*SECRET*"]}  # fmt: skip
IMAGE = {"RepoDigests": [f"{REPO}@{DIGEST}"], "Config": {"Env": ["PATH=/usr/bin", "PORT=8080"]}}


def legacy(name="acme", image=f"{REPO}:0.12.0", env=("WEBUI_NAME=Acme", "WEBUI_SECRET_KEY=k-acme"), status="running",
           mounts=(VOLUME,), port="3001", host_ip=""):  # fmt: skip
    return {"Name": f"/{name}", "Config": {"Image": image, "Env": ["PATH=/usr/bin", "PORT=8080", *env]},
            "State": {"Status": status}, "Mounts": list(mounts),
            "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": host_ip, "HostPort": port}] if port else None}},
            "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}, "Memory": 512 * 1024 * 1024}}  # fmt: skip


DOMAINS = {3001: ["acme.example.com"], 3002: ["globex.example.com"]}


def test_a_container_started_the_old_way_becomes_a_declaration_and_the_changes_are_said():
    entry = adoption_entry(legacy(), IMAGE, REPO, SETTINGS, DOMAINS, None)
    assert entry["digest_ref"] == f"{REPO}@{DIGEST}"
    assert (entry["env"], entry["secrets"], entry["secret_key_source"]) == (
        {"WEBUI_NAME": "Acme"},
        {"WEBUI_SECRET_KEY": "k-acme"},
        "env",
    )
    assert (entry["data"]["kind"], entry["data"]["name"]) == ("volume", "acme-data")
    assert (entry["domains"], entry["restart_policy"], entry["memory"]) == (
        ["acme.example.com"],
        "unless-stopped",
        "512m",
    )
    assert entry["problems"] == []
    assert entry["sites"] == []
    assert adoption_entry(legacy(), IMAGE, REPO, SETTINGS, DOMAINS, None, {3001: ["/a.conf"], 3002: ["/b.conf"]})[
        "sites"
    ] == ["/a.conf"]
    assert entry["changes"] == [f"runs by tag ({REPO}:0.12.0): pinned to its digest {DIGEST}",
                                "port 3001 moves from 0.0.0.0 to loopback behind nginx"]  # fmt: skip


def test_the_generated_key_read_in_the_container_is_kept():
    entry = adoption_entry(legacy(env=("WEBUI_NAME=Acme",)), IMAGE, REPO, SETTINGS, DOMAINS, "generated-key")
    assert (entry["secrets"], entry["secret_key_source"], entry["problems"]) == (
        {"WEBUI_SECRET_KEY": "generated-key"},
        "file",
        [],
    )


@pytest.mark.parametrize(
    ("container", "image", "problem"),
    [
        (legacy(image="other/app:1"), {"RepoDigests": ["other/app@" + DIGEST]}, "runs other/app:1, not from " + REPO),
        (legacy(), {"RepoDigests": []}, f"its image {REPO}:0.12.0 has no repository digest from {REPO} (built or loaded locally)"),
        (legacy(status="exited"), IMAGE, "it is exited: start it, or leave it out of the adoption"),
        (legacy(mounts=()), IMAGE, "its data (/app/backend/data) is inside the container, on no volume or bind mount: replacing it would delete"),
        (legacy(env=()), IMAGE, "no WEBUI_SECRET_KEY in its env nor in the container: every user would be logged out"),
        (legacy(port=None), IMAGE, "publishes no port for 8080"),
        (legacy(port="3999"), IMAGE, "no nginx server_name proxies to its port"),
        (legacy(port="3007"), IMAGE, "its nginx site serves 2 names (chat.example, www.chat.example) and a tenant has one domain"),
        (legacy(port="3006"), IMAGE, "its nginx site serves HTTPS but does not name both its ssl_certificate"),
        (legacy(port="3009"), IMAGE, "its nginx sites serve HTTPS with 2 certificates (/a.crt, /b.crt) and a tenant has one"),
    ],
)  # fmt: skip
def test_each_doubt_is_a_problem_line(container, image, problem):
    domains = {**DOMAINS, 3006: ["vague.example"], 3007: ["chat.example", "www.chat.example"], 3009: ["two.example"]}
    tls = {3006: [("", "")], 3009: [("/a.crt", "/z.key"), ("/b.crt", "/y.key")]}
    problems = adoption_entry(container, image, REPO, SETTINGS, domains, None, {}, tls)["problems"]
    assert any(p.startswith(problem) for p in problems), problems


def test_two_containers_claiming_a_domain_or_a_port_conflict():
    one = adoption_entry(legacy(), IMAGE, REPO, SETTINGS, DOMAINS, None)
    two = adoption_entry(
        legacy(name="acme-copy", port="3001", host_ip="127.0.0.1"), IMAGE, REPO, SETTINGS, DOMAINS, None
    )
    other = adoption_entry(legacy(name="globex", port="3002"), IMAGE, REPO, SETTINGS, DOMAINS, None)
    assert fleet_conflicts([one, two, other]) == [
        "acme and acme-copy both claim domain acme.example.com: adopt one of them",
        "acme and acme-copy both claim port 3001: adopt one of them",
    ]


@pytest.mark.parametrize(
    ("reference", "repository"),
    [("registry:5000/a/b:1.0", "registry:5000/a/b"), ("registry:5000/a/b@sha256:" + "1" * 64, "registry:5000/a/b"),
     ("b", "b"), ("a/b:latest@sha256:" + "1" * 64, "a/b")],
)  # fmt: skip
def test_repository_of(reference, repository):
    assert repository_of(reference) == repository


SITE_TLS = """
server { listen 80; server_name chat.initech.example; return 301 https://$host$request_uri; }
server {
    listen 443 ssl http2;
    server_name chat.initech.example;
    ssl_certificate     /etc/ssl/initech/fullchain.pem;
    ssl_certificate_key /etc/ssl/initech/privkey.pem;
    location / { proxy_pass http://127.0.0.1:3005; }
}
server { listen 443 ssl; server_name vague.example; include snippets/certs.conf; location / { proxy_pass http://127.0.0.1:3006; } }
"""


def test_nginx_tls_per_local_port():
    quoted = (
        'server { listen 443 ssl; server_name q.example; ssl_certificate "/etc/ssl/q.pem"; '
        "ssl_certificate_key '/etc/ssl/q.key'; location / { proxy_pass http://127.0.0.1:3008; } }"
    )
    assert nginx_tls({"/etc/nginx/conf.d/initech.conf": SITE_TLS, "/etc/nginx/conf.d/acme.conf": SITE_ACME,
                      "/etc/nginx/conf.d/q.conf": quoted}) == {
        3005: [("/etc/ssl/initech/fullchain.pem", "/etc/ssl/initech/privkey.pem")],
        3006: [("", "")],
        3008: [("/etc/ssl/q.pem", "/etc/ssl/q.key")],
    }  # fmt: skip


def test_the_hand_written_sites_certificate_is_carried_over():
    tls = nginx_tls({"/etc/nginx/conf.d/initech.conf": SITE_TLS})
    entry = adoption_entry(legacy(port="3005"), IMAGE, REPO, SETTINGS, {3005: ["chat.initech.example"]}, None, {}, tls)
    assert entry["problems"] == []
    assert entry["tls"] == {"cert": "/etc/ssl/initech/fullchain.pem", "key": "/etc/ssl/initech/privkey.pem"}
