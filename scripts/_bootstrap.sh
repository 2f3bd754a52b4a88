# Shared by scripts/run and scripts/test: install what is missing, nothing more.
# Sourced, not executed.  Idempotent: a second run installs nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '[authgateway] %s\n' "$*" >&2; }

# ensure_apt PKG...: install the Debian packages that are not installed yet.
ensure_apt() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        return 1
    fi
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# ensure_venv EXTRAS: create .venv and install the project with those extras
# (pinned by scripts/requirements.lock) unless it is already up to date.
ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        for candidate in python3.11 python3; do
            if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
                python="$candidate"; break
            fi
        done
    fi
    [ -n "$python" ] || { say "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; return 1; }
    if [ ! -x "$PY" ]; then
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            ensure_apt python3-venv || return 1
        fi
        say "creating $VENV"
        "$python" -m venv "$VENV" || return 1
    fi
    # The stamp records the dependency files' hash and the extras installed;
    # a venv that already has every wanted extra is left alone.
    local stamp="$VENV/.installed"
    local hash have="" want="$extras" extra
    hash="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/requirements.lock" | sha256sum | cut -c1-16)"
    if [ "$(head -n1 "$stamp" 2>/dev/null)" = "$hash" ]; then
        have="$(sed -n 2p "$stamp")"
        local missing=0
        for extra in ${extras//,/ }; do
            case ",$have," in *",$extra,"*) ;; *) missing=1 ;; esac
        done
        [ "$missing" -eq 0 ] && return 0
        [ -n "$have" ] && want="$have,$extras"
    fi
    want="$(printf '%s' "$want" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
    say "installing the project and its dependencies (${want:-no extras}) into $VENV"
    local target="$ROOT"
    [ -n "$want" ] && target="$ROOT[$want]"
    "$PY" -m pip install -q --disable-pip-version-check -c "$ROOT/scripts/requirements.lock" \
        -e "$target" >&2 || return 1
    printf '%s\n%s\n' "$hash" "$want" > "$stamp"
}
