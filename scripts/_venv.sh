# shellcheck shell=bash
# Sourced by scripts/install, bench, wheels and test-versions (not run alone).
# It finds a Python, brings in what Debian lacks (as root with apt), and makes the
# project virtual environment .venv, so nothing is ever installed into the system's
# Python: Debian 12's own python3 is externally managed (PEP 668) and would refuse.
#
# An existing .venv is kept. PYTHON=/path/to/python3.X picks the interpreter of a new
# .venv (or replaces one of another version); without it, the first python3 on PATH
# (python3.13 ... python3.10 if that one is older than 3.10).

VENV=.venv
MIN_PIP=25.1  # `pip install --group` (PEP 735 dependency groups)

say() { echo "${SCRIPT_NAME:-scripts}: $*" >&2; }

python_ok() {  # a CPython 3.10+ that runs
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        python_ok "$PYTHON" || { say "PYTHON=$PYTHON is not a Python 3.10 or newer"; exit 1; }
        echo "$PYTHON"
        return
    fi
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    say "no Python 3.10 or newer found (install python3, or set PYTHON=/path/to/python3.X)"
    exit 1
}

is_root_with_apt() {
    [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1
}

# What the chosen Python lacks to make a venv and build the C parser, as Debian packages.
missing_debian_packages() {
    local py="$1" need_nginx="$2" missing=()
    "$py" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    "$py" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || missing+=(python3-dev)
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    if [ "$need_nginx" = 1 ] && ! command -v nginx >/dev/null 2>&1 \
        && [ ! -x /usr/sbin/nginx ]; then
        missing+=(nginx-light)
    fi
    # The tests also build the benchmark suite's optional Go fasthttp peer (tiny runs).
    if [ "$need_nginx" = 1 ]; then
        command -v go >/dev/null 2>&1 || missing+=(golang-go)
        [ -d /usr/share/gocode/src/github.com/valyala/fasthttp ] \
            || missing+=(golang-github-valyala-fasthttp-dev)
    fi
    echo "${missing[@]}"
}

# Install the Debian packages the project needs (root with apt), or say what is missing.
ensure_system_packages() {
    local py="$1" need_nginx="${2:-0}" missing
    missing=$(missing_debian_packages "$py" "$need_nginx")
    [ -z "$missing" ] && return 0
    if ! is_root_with_apt; then
        say "missing Debian packages: $missing; install them (apt-get install $missing)," \
            "or run this as root to have it done"
        return 0  # go on: the pure-Python parser still works, and the venv step says if it cannot
    fi
    say "installing Debian packages: $missing"
    apt-get update -qq
    # shellcheck disable=SC2086  # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
        || { [[ " $missing " == *" nginx-light "* ]] \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; } \
        || say "apt-get could not install all of: $missing"
}

# Make (or reuse) a venv at $2 for interpreter $1, with a pip that knows --group.
ensure_venv() {
    local py="$1" dir="$2" want have=""
    want=$("$py" -c 'import sys; print(sys.version.split()[0])')
    if [ -x "$dir/bin/python" ]; then
        have=$("$dir/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)
    fi
    if [ "$have" != "$want" ]; then
        say "creating $dir with $py (Python $want)"
        "$py" -m venv --clear "$dir" || {
            say "could not create $dir: '$py -m venv' failed (Debian: apt-get install python3-venv)"
            exit 1
        }
    fi
    if ! "$dir/bin/python" -c "import sys
from importlib.metadata import version
sys.exit(tuple(map(int, version('pip').split('.')[:2])) < tuple(map(int, '$MIN_PIP'.split('.'))))" \
        2>/dev/null; then
        "$dir/bin/python" -m pip install -q --upgrade "pip>=$MIN_PIP"
    fi
}

# Every CPython 3.10-3.13 here, one per minor version, as "X.Y path" lines: python3.1X
# on PATH, then pyenv's versions. Free-threaded builds are not claimed, so left out.
find_cpythons() {
    local candidates=() c
    for c in python3.10 python3.11 python3.12 python3.13; do
        command -v "$c" >/dev/null 2>&1 && candidates+=("$(command -v "$c")")
    done
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[0-3].*/bin/python3; do
        [ -x "$c" ] && candidates+=("$c")
    done
    for c in "${candidates[@]}"; do
        "$c" -c 'import sys, sysconfig, platform
ok = (3, 10) <= sys.version_info[:2] <= (3, 13) and platform.python_implementation() == "CPython"
ok = ok and not sysconfig.get_config_var("Py_GIL_DISABLED")
print(f"{sys.version_info[0]}.{sys.version_info[1]} {sys.executable}" if ok else "")' \
            2>/dev/null || true
    done | awk 'NF && !seen[$1]++'
}

# The project venv, made or kept, with what the system needs for it; $1=1: nginx too.
project_venv() {
    local py
    if [ -z "${PYTHON:-}" ] && [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python"; then
        py="$VENV/bin/python"
    else
        py=$(pick_python)
    fi
    ensure_system_packages "$py" "${1:-0}"
    ensure_venv "$py" "$VENV"
}
