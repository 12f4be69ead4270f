#!/usr/bin/env bash
# Installs what the test suite needs and runs all of it: unit, integration and
# end-to-end tests (the latter start the real binary, curl, promtool, a
# Prometheus server and an Alertmanager on loopback, and a standalone journald
# when none runs),
# then a short fuzzing pass over every parser, a one-minute soak, the Debian
# package built, installed, run and purged, and the OCI image built and run.
# Run as root on Debian: the tests read /proc/slabinfo, mount a tmpfs, drop to an
# unprivileged user for one case, and briefly install the journal catalog.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v curl >/dev/null || need+=(curl)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)  # the fleet test's pages
command -v jsonnet >/dev/null || need+=(jsonnet)  # the monitoring mixin in mixin/
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)  # .build-venv below
command -v buildah >/dev/null || need+=(buildah)  # scripts/image.sh
command -v kubectl >/dev/null || need+=(kubernetes-client)  # kubectl kustomize deploy/kubernetes
command -v setpriv >/dev/null && command -v prlimit >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)  # the soak's keep-alive clients
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)  # the .deb's Depends
command -v lintian >/dev/null || need+=(lintian)
command -v tmux >/dev/null || need+=(tmux)  # slabwatch top in a real terminal
command -v chromium >/dev/null || need+=(chromium)  # the web page in a real browser
command -v pkg-config >/dev/null || need+=(pkg-config)
# scripts/build-static.sh links libstdc++ from its archive (the package tests' binary)
compgen -G '/usr/lib/gcc/*/*/libstdc++.a' >/dev/null || need+=(libstdc++-12-dev)
pkg-config --exists yaml-0.1 2>/dev/null || need+=(libyaml-dev)
pkg-config --exists zlib 2>/dev/null || need+=(zlib1g-dev)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)   # TLS
pkg-config --exists libcrypt 2>/dev/null || need+=(libcrypt-dev) # bcrypt
command -v openssl >/dev/null || need+=(openssl)  # the TLS tests' certificates
# The BPF attribution tests: bpftool (prog/map lists, vmlinux.h for
# scripts/bpf.sh), libbpf-dev (its BPF headers), libbpf1 (loaded at run time),
# bpftrace (the benchmark's one-liner).
command -v bpftool >/dev/null || need+=(bpftool)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
ldconfig -p | grep 'libbpf\.so\.1 ' >/dev/null || need+=(libbpf1)  # (no -q: an early exit would fail the pipe)
command -v bpftrace >/dev/null || need+=(bpftrace)
# journald, journalctl, systemd-analyze and systemd-socket-activate
{ [ -x /lib/systemd/systemd-journald ] && command -v systemd-analyze >/dev/null \
  && command -v systemd-socket-activate >/dev/null; } || need+=(systemd)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Offline schema checks of deploy/kubernetes and the dashboard, from PyPI, in a
# virtual environment of the project's own (the tests run .build-venv/bin/python).
if ! .build-venv/bin/python -c 'import kubernetes_validate, grafana_foundation_sdk' 2>/dev/null; then
  python3 -m venv .build-venv
  .build-venv/bin/pip install -q 'kubernetes-validate==1.37.0' 'grafana-foundation-sdk==1769699998!10.1.0'
fi
# Debian 12's own kubectl (its kustomize is 2.0.3), unpacked beside the build,
# so deploy/kubernetes is also rendered by the oldest kustomize a Debian user has.
if [ ! -x .build-kubectl/usr/bin/kubectl ]; then
  deb_dir=$(mktemp -d)
  (cd "$deb_dir" && { apt-get download kubernetes-client >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download kubernetes-client >/dev/null; }; })
  dpkg -x "$deb_dir"/kubernetes-client_*.deb .build-kubectl
  rm -rf "$deb_dir"
fi
# The Debian package starts its own Prometheus service where an init system
# runs; the tests start theirs on an ephemeral port and need nothing else.

# SwiftPM and XCTest leave TemporaryDirectory.* folders in /tmp on every run;
# the tests themselves leave nothing. Remove the toolchain's new ones at exit.
tmp_before=$(mktemp)
ls -d /tmp/TemporaryDirectory.* 2>/dev/null | sort >"$tmp_before" || true
toolchain_litter() {
  ls -d /tmp/TemporaryDirectory.* 2>/dev/null | sort | comm -13 "$tmp_before" - | xargs -r rm -rf
  rm -f "$tmp_before"
}
trap toolchain_litter EXIT

swift build
swift test
# Short passes of the long-running checks (README gives the long runs' results).
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
scripts/soak.sh "${SOAK_SECONDS:-60}"
# The Debian package: built, linted, installed, run without Swift, purged.
scripts/test-package.sh
# The OCI image: built from scratch, unpacked, run chrooted on its own files.
scripts/test-image.sh
