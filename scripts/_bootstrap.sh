# Shared by scripts/run, scripts/test and the other scripts: install what is
# missing, nothing more.  Sourced, not executed.  Idempotent: a second run
# installs nothing.
#
# Help only: when the script's arguments hold -h or --help (before any "--"),
# HELP_ONLY=1 and ensure_apt and ensure_venv install nothing.  Without a
# .venv, ensure_venv then prints the script's own header comment and exits,
# so `scripts/X --help` works on a fresh machine too.
#
# apt and pip write to a log file, not the terminal: a failure shows its last
# lines, and install_summary prints one line of what was installed and how
# long it took.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
INSTALL_LOG=""       # created by the first install
INSTALLED=()         # what was installed, for install_summary
_STARTED=$SECONDS

HELP_ONLY=0
for _arg in "$@"; do
    case "$_arg" in
        --) break ;;
        -h|--help) HELP_ONLY=1; break ;;
    esac
done
unset _arg

say() { printf '[authgateway] %s\n' "$*" >&2; }

# print_header: the calling script's header comment, as its usage.
print_header() {
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
}

# logged DESCRIPTION CMD...: run CMD with its output in INSTALL_LOG; on failure
# show the log's last lines.
logged() {
    local what="$1"; shift
    if [ -z "$INSTALL_LOG" ]; then
        INSTALL_LOG="$(mktemp "${TMPDIR:-/tmp}/authgateway-install.XXXXXX.log")"
    fi
    printf '\n$ %s\n' "$*" >> "$INSTALL_LOG"
    if ! "$@" >> "$INSTALL_LOG" 2>&1; then
        say "$what failed; the last lines of $INSTALL_LOG:"
        tail -n 25 "$INSTALL_LOG" | sed 's/^/    /' >&2
        return 1
    fi
}

# ensure_apt PKG...: install the Debian packages that are not installed yet.
ensure_apt() {
    [ "$HELP_ONLY" -eq 1 ] && return 0
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
    logged "apt-get update" apt-get update || return 1
    logged "apt-get install" apt-get install -y --no-install-recommends "${missing[@]}" || return 1
    INSTALLED+=("Debian packages ${missing[*]}")
}

# find_python: the Python 3.11 to build .venv with: $PYTHON, else python3.11 or python3.
find_python() {
    local candidates=(python3.11 python3) candidate
    [ -n "${PYTHON:-}" ] && candidates=("$PYTHON")
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# ensure_venv EXTRAS: create .venv and install the project with those extras
# (pinned by scripts/requirements.lock) unless it is already up to date.
ensure_venv() {
    local extras="$1"
    if [ "$HELP_ONLY" -eq 1 ]; then
        [ -x "$PY" ] && return 0
        print_header
        say "(nothing is installed for --help; without .venv this is all the help there is)"
        exit 0
    fi
    local python
    python="$(find_python)" || { say "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; return 1; }
    if [ ! -x "$PY" ]; then
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            ensure_apt python3-venv || return 1
        fi
        say "creating $VENV"
        logged "creating $VENV" "$python" -m venv "$VENV" || return 1
        INSTALLED+=("a new .venv")
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
    logged "pip install" "$PY" -m pip install --disable-pip-version-check -c "$ROOT/scripts/requirements.lock" \
        -e "$target" || return 1
    printf '%s\n%s\n' "$hash" "$want" > "$stamp"
    INSTALLED+=("the project with ${want:-no extras}")
}

# install_summary: one line, what ensure_apt and ensure_venv installed and how long it took.
install_summary() {
    local took=$((SECONDS - _STARTED))
    if [ ${#INSTALLED[@]} -eq 0 ]; then
        say "nothing to install (${took} s)"
        return 0
    fi
    local what="${INSTALLED[0]}" i
    for ((i = 1; i < ${#INSTALLED[@]}; i++)); do
        if [ $i -eq $((${#INSTALLED[@]} - 1)) ]; then what+=" and ${INSTALLED[i]}"; else what+=", ${INSTALLED[i]}"; fi
    done
    local log="$INSTALL_LOG"
    if [ -d "$VENV" ] && [ -n "$INSTALL_LOG" ]; then
        log="$VENV/install.log"
        mv -f "$INSTALL_LOG" "$log"
    fi
    local time="$took s"
    [ "$took" -ge 60 ] && time="$((took / 60)) min $((took % 60)) s"
    say "installed $what in $time (output: $log)"
}
