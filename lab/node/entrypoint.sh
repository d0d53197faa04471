#!/bin/sh
# Lab node: sshd for Ansible, syslog, nginx in front of tenants, a forwarder that makes
# 127.0.0.1:5000 the lab registry here as on the controller, and dockerd. The node runs
# under docker's --init (tini as PID 1), which reaps the containerd-shims dockerd leaves.
set -eu
for key in /etc/ssh/lab-hostkeys/ssh_host_*_key; do
  install -m 0600 "$key" /etc/ssh/
  install -m 0644 "$key.pub" /etc/ssh/
done
mkdir -p /run/sshd /root/.ssh
install -m 0600 /etc/ssh/lab-authorized_keys /root/.ssh/authorized_keys
/usr/sbin/sshd -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o UseDNS=no

# A syslog, so tests can check what modules log on a host (lab/node/syslog.py: /var/log/messages).
python3 /usr/local/lib/lab-syslog.py &

socat TCP-LISTEN:"${LAB_REGISTRY_PORT}",bind=127.0.0.1,fork,reuseaddr \
  TCP:"${LAB_REGISTRY_GATEWAY}:${LAB_REGISTRY_PORT}" &

rm -f /etc/nginx/sites-enabled/default /run/nginx.pid
nginx

# A restarted node keeps its /run: a stale containerd.pid naming a PID that
# now belongs to another process makes dockerd wait forever for containerd.
rm -f /run/docker.pid /run/docker/containerd/containerd.pid
exec dockerd --host unix:///var/run/docker.sock >> /var/log/dockerd.log 2>&1
