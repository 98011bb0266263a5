#!/usr/bin/env bash
# Installs everything StreamScout needs on Debian 12 that is not there yet; safe to run again.
#
#   1. Debian packages (apt is skipped entirely when all are installed, so re-runs are fast)
#   2. the virtualenv .venv with `pip install -e '.[dev]'` (skipped while pyproject.toml is unchanged)
#   3. the JVM pieces from Maven Central, pinned in tools/jvm/pom.xml and checked against the
#      sha256 list tools/jvm/jars.lock: the Kafka broker (KRaft) and the Flink Kafka connector
#
# Runs as root (CI and the dev machines) or as a user with sudo for step 1. No prompts.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$PWD"
STATE_DIR="${STREAMSCOUT_STATE_DIR:-var}"
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$REPO/$STATE_DIR" ;; esac
JARS_DIR="$STATE_DIR/jars"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3.11}"

log() { printf 'setup: %s\n' "$*"; }

# --- 1. Debian packages -----------------------------------------------------------------
PACKAGES=(
  ca-certificates curl
  python3.11 python3.11-venv python3-pip
  postgresql redis-server
  openjdk-17-jre-headless maven
  prometheus prometheus-alertmanager prometheus-node-exporter
  chromium chromium-driver
  nix-bin ansible ansible-lint systemd
)

missing=()
for package in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]})); then
  SUDO=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo -n)
  fi
  log "installing Debian packages: ${missing[*]}"
  # The packaged services (postgresql@15-main, redis, prometheus, ...) must not start: the local
  # stack runs its own instances on its own ports. A temporary policy-rc.d forbids starting them.
  policy=/usr/sbin/policy-rc.d
  added_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  [[ -z $added_policy ]] || "${SUDO[@]}" rm -f "$policy"
else
  log "Debian packages: all ${#PACKAGES[@]} present"
fi

# --- 2. Python virtualenv ---------------------------------------------------------------
stamp="$VENV/.streamscout-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]] || ! "$VENV/bin/python" -c 'import streamscout, pyflink' 2>/dev/null; then
  log "pip install -e '.[dev]'"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
else
  log "virtualenv: up to date"
fi

# --- 3. JVM jars from Maven Central (pinned, sha256-checked) ------------------------------
LOCK="$REPO/tools/jvm/jars.lock"
verify_jars() {
  [[ -d "$JARS_DIR" ]] || return 1
  (cd "$JARS_DIR" && grep -v '^#' "$LOCK" | sha256sum --check --quiet --strict) >/dev/null 2>&1 || return 1
  # No jar beyond the lock (a stale version on the classpath would win by accident).
  local expected actual
  expected="$(grep -v '^#' "$LOCK" | awk '{print $2}' | sort)"
  actual="$(cd "$JARS_DIR" && ls kafka/*.jar flink/*.jar 2>/dev/null | sort)"
  [[ "$expected" == "$actual" ]]
}

if verify_jars; then
  log "JVM jars: $(grep -vc '^#' "$LOCK") verified against tools/jvm/jars.lock"
else
  log "resolving Kafka and the Flink Kafka connector with Maven into $JARS_DIR"
  rm -rf "$JARS_DIR/kafka" "$JARS_DIR/flink"
  mvn -B -q -Dstyle.color=never --strict-checksums -f tools/jvm/pom.xml -Djars.dir="$JARS_DIR" package
  if ! verify_jars; then
    echo "setup: the jars Maven resolved do not match tools/jvm/jars.lock:" >&2
    (cd "$JARS_DIR" && grep -v '^#' "$LOCK" | sha256sum --check --strict 2>&1 | grep -v ': OK$') >&2 || true
    exit 1
  fi
  log "JVM jars: verified"
fi

log "done"
