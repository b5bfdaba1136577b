# Helpers shared by build-tiny.sh and build-debian.sh (sourced, not run).
# shellcheck shell=bash disable=SC2086  # $missing is a word list on purpose
# Everything comes from Debian's package registry as this machine's apt is
# configured; nothing else is downloaded.

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "error: $*"; exit 1; }

_apt_updated=0
apt_update_once() {
    [ "$_apt_updated" = 1 ] && return 0
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    _apt_updated=1
}

# ensure_tools <command-or-file>=<debian package> ...
# Installs the packages whose command (or absolute file) is missing.
ensure_tools() {
    local missing="" item what pkg
    for item in "$@"; do
        what=${item%%=*}
        pkg=${item#*=}
        case "$what" in
            /*) [ -e "$what" ] && continue ;;
            *) command -v "$what" > /dev/null 2>&1 && continue ;;
        esac
        missing="$missing $pkg"
    done
    [ -n "$missing" ] || return 0
    [ "$(id -u)" = 0 ] || die "missing tools ($missing) and not root to install them"
    log "installing:$missing"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2 \
            || die "apt-get install$missing failed"
    fi
}

# candidate_versions <package> ...: "<package>=<candidate>" lines for the
# packages apt knows (one apt-cache run: each run costs about half a second).
candidate_versions() {
    apt-cache policy "$@" 2>/dev/null | awk '
        /^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1); next }
        /^  Candidate:/ { if ($2 != "(none)" && pkg != "") print pkg "=" $2; pkg = "" }'
}

# resolve_versions <package> ...: prints "<package>=<version>" lines in the
# order given, running apt-get update once when the package lists do not
# know a package.
resolve_versions() {
    local found pkg line
    found=$(candidate_versions "$@")
    for pkg in "$@"; do
        if ! printf '%s\n' "$found" | grep -q "^$pkg="; then
            apt_update_once
            found=$(candidate_versions "$@")
            break
        fi
    done
    for pkg in "$@"; do
        line=$(printf '%s\n' "$found" | grep -m 1 "^$pkg=" || true)
        [ -n "$line" ] || die "no installable version of $pkg in the configured apt sources"
        echo "$line"
    done
}

# download_debs <dir> <package=version> ...: apt-get download into <dir>,
# keeping .debs already there. Retries once after apt-get update (an old
# package list may name a version the mirror no longer has).
download_debs() {
    local dir=$1
    shift
    mkdir -p "$dir"
    local wanted=() spec pkg version file f
    for spec in "$@"; do
        pkg=${spec%%=*}
        version=${spec#*=}
        file=""
        for f in "$dir"/"${pkg}"_*.deb; do
            [ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$version" ] && file=$f
        done
        [ -n "$file" ] || wanted+=("$spec")
    done
    [ ${#wanted[@]} -gt 0 ] || return 0
    log "apt-get download ${wanted[*]}"
    # _apt cannot write into root-only temp dirs: download as root quietly.
    if ! (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "${wanted[@]}" >&2); then
        apt_update_once
        (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "${wanted[@]}" >&2) \
            || die "apt-get download failed"
    fi
}

# deb_file <dir> <package>: the downloaded .deb of a package.
deb_file() {
    local f
    for f in "$1"/"$2"_*.deb; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# inputs_hash <file|dir> ... -- <extra text>: sha256 over the files' paths
# and contents (directories recursively, sorted) and the extra text.
inputs_hash() {
    local item
    {
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do
            item=$1
            shift
            if [ -d "$item" ]; then
                (cd "$item" && find . -type f -o -type l | LC_ALL=C sort | while read -r f; do
                    echo "== $f"
                    if [ -L "$f" ]; then readlink "$f"; else cat "$f"; fi
                done)
            else
                echo "== $(basename "$item")"
                cat "$item"
            fi
        done
        [ "${1:-}" = "--" ] && shift
        printf '%s\n' "$@"
    } | sha256sum | cut -d ' ' -f 1
}

# apt_lists_fingerprint: changes whenever the package lists or the apt
# preferences change (apt-get update), i.e. whenever a candidate version may.
apt_lists_fingerprint() {
    find /var/lib/apt/lists /etc/apt/preferences /etc/apt/preferences.d -maxdepth 1 \
        -type f -printf '%f %s %T@\n' 2>/dev/null | LC_ALL=C sort | sha256sum | cut -d ' ' -f 1
}

# <output>.inputs: line 1 the full inputs hash (files + package versions),
# line 2 "fast <hash>" (files + apt lists fingerprint), then the versions.
# cache_hit <output> <hash>: <output> exists and was built from these inputs.
cache_hit() {
    [ -s "$1" ] && [ -f "$1.inputs" ] && [ "$(sed -n 1p "$1.inputs")" = "$2" ]
}

# fast_cache_hit <output> <fast-hash>: same files and the same apt lists as
# at the last check, so the same versions: no need to ask apt at all.
fast_cache_hit() {
    [ -s "$1" ] && [ -f "$1.inputs" ] && [ "$(sed -n 2p "$1.inputs")" = "fast $2" ]
}

# record_inputs <output> <hash> <fast-hash> <line>...
record_inputs() {
    local output=$1 hash=$2 fast=$3
    shift 3
    { echo "$hash"; echo "fast $fast"; printf '%s\n' "$@"; } > "$output.inputs.tmp"
    mv "$output.inputs.tmp" "$output.inputs"
}
