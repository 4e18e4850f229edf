#!/usr/bin/env bash
# Builds the .deb (cargo-deb) and .rpm (cargo-generate-rpm) from the metadata in
# Cargo.toml, then checks them: every expected file is in both (binaries, each
# man page, the completions, the systemd user units, the docs), the control
# fields are sane, neither has maintainer scripts, the packaged binaries run,
# lintian and rpmlint are clean, and both install, work and uninstall for real
# (tests/packaging/install.sh: dpkg, a real `systemd --user`, an upgrade, rpm).
#
#   scripts/package.sh
#
# Installs the pinned cargo-deb and cargo-generate-rpm into a cache directory the
# first time ($MCP_GATEWAY_PACKAGING_CACHE, else ~/.cache/mcp-gateway-packaging),
# and Debian's `rpm`, `lintian` and `rpmlint` with apt-get when they are missing. Packages
# go to target/packages/, the release build to the cache's target/
# ($MCP_GATEWAY_PACKAGING_TARGET). Exits non-zero listing what is missing or wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

export CARGO_INSTALL_ROOT=${MCP_GATEWAY_PACKAGING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway-packaging}
export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
install_tool() { # crate version: cargo install it into the cache unless that version is there
    local crate=$1 version=$2
    if [[ "$("$CARGO_INSTALL_ROOT/bin/$crate" --version 2>/dev/null || true)" != "$crate $version" ]]; then
        echo "== installing $crate $version into $CARGO_INSTALL_ROOT"
        cargo install "$crate" --version "$version" --locked --force --quiet </dev/null
    fi
}
START=$SECONDS
install_tool cargo-deb "$CARGO_DEB_VERSION"
install_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

# Debian's `rpm` reads and installs the .rpm; `lintian` and `rpmlint` lint
# them. apt-get installs whichever is missing (as root; CI is).
missing=()
for tool in rpm lintian rpmlint; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
    if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
        echo "scripts/package.sh: needs ${missing[*]} (apt-get install ${missing[*]}) to check the packages" >&2
        exit 1
    fi
    echo "== installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# The release build goes to the cache too, as the fuzz builds do: a fresh clone
# (CI) then recompiles only this crate, not the whole dependency tree. cargo-deb
# and cargo-generate-rpm find the binaries there through CARGO_TARGET_DIR.
export CARGO_TARGET_DIR=${MCP_GATEWAY_PACKAGING_TARGET:-$CARGO_INSTALL_ROOT/target}
TARGET_DIR=$CARGO_TARGET_DIR
OUT=$PWD/target/packages
VERSION=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -n1)

TOOLS_SECS=$((SECONDS - START))
echo "== building the release binaries (into $TARGET_DIR)"
cargo build --release --locked --bins </dev/null
BUILD_SECS=$((SECONDS - START - TOOLS_SECS))

# cargo-generate-rpm strips and compresses nothing: give it stripped binaries and
# gzipped man pages, as rpmbuild would have them (cargo-deb does both itself).
STAGE="$TARGET_DIR/release/rpm"
rm -rf "$STAGE" "$OUT"
mkdir -p "$STAGE/man" "$OUT"
for bin in mcp-gateway mcp-gateway-connect; do
    strip --strip-all -o "$STAGE/$bin" "$TARGET_DIR/release/$bin"
done
for page in man/*.1; do
    gzip -9nc "$page" >"$STAGE/man/$(basename "$page").gz"
done

echo "== building the packages (into $OUT)"
# A release names its maintainer (scripts/release.sh); other builds keep Cargo.toml's.
DEB_ARGS=()
[[ -z ${MCP_GATEWAY_MAINTAINER:-} ]] || DEB_ARGS=(--maintainer "$MCP_GATEWAY_MAINTAINER")
cargo deb --no-build "${DEB_ARGS[@]}" --output "$OUT/" </dev/null >/dev/null
cargo generate-rpm --output "$OUT/" </dev/null
DEB=$(ls "$OUT"/*.deb)
RPM=$(ls "$OUT"/*.rpm)

problems=()
problem() { problems+=("$*"); }

# What both packages must contain (paths without the leading /), but for zsh's
# directory, which differs: Debian's vendor-completions, else site-functions.
expected() { # zsh-dir license-dir
    echo usr/bin/mcp-gateway
    echo usr/bin/mcp-gateway-connect
    for page in man/*.1; do echo "usr/share/man/man1/$(basename "$page").gz"; done
    for bin in mcp-gateway mcp-gateway-connect; do
        echo "usr/share/bash-completion/completions/$bin"
        echo "$1/_$bin"
        echo "usr/share/fish/vendor_completions.d/$bin.fish"
    done
    for unit in systemd/*; do echo "usr/lib/systemd/user/$(basename "$unit")"; done
    echo usr/share/doc/mcp-gateway/README.md
    echo "$2/LICENSE-MIT"
    echo "$2/LICENSE-APACHE"
}
check_files() { # package-name listing-file zsh-dir license-dir
    local name=$1 listing=$2 want
    while read -r want; do
        grep -qxF "$want" "$listing" || problem "$name: missing /$want"
    done < <(expected "$3" "$4")
}

# The packaged files themselves, extracted: the binaries run, the man pages are
# valid gzip, the completions and units are the repository's.
check_tree() { # package-name root zsh-dir
    local name=$1 root=$2 bin got gz pair unit
    for bin in mcp-gateway mcp-gateway-connect; do
        got=$("$root/usr/bin/$bin" --version 2>&1 || true)
        [[ $got == "$bin $VERSION" ]] || problem "$name: /usr/bin/$bin --version printed '$got'"
    done
    "$root/usr/bin/mcp-gateway" config check "$WORK/config.yaml" >/dev/null 2>&1 ||
        problem "$name: /usr/bin/mcp-gateway config check failed on a valid config"
    for gz in "$root"/usr/share/man/man1/*.gz; do
        gzip -t "$gz" 2>/dev/null || problem "$name: ${gz#"$root"} is not valid gzip"
    done
    for bin in mcp-gateway mcp-gateway-connect; do
        for pair in "$bin.bash:usr/share/bash-completion/completions/$bin" "_$bin:$3/_$bin" \
            "$bin.fish:usr/share/fish/vendor_completions.d/$bin.fish"; do
            cmp -s "completions/${pair%%:*}" "$root/${pair#*:}" ||
                problem "$name: /${pair#*:} differs from completions/${pair%%:*}"
        done
    done
    for unit in $(cd systemd && echo *); do
        cmp -s "systemd/$unit" "$root/usr/lib/systemd/user/$unit" ||
            problem "$name: /usr/lib/systemd/user/$unit differs from systemd/$unit"
    done
    grep -qx 'ExecStart=/usr/bin/mcp-gateway serve' "$root/usr/lib/systemd/user/mcp-gateway.service" 2>/dev/null ||
        problem "$name: mcp-gateway.service does not run /usr/bin/mcp-gateway serve"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-gateway-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
printf 'servers:\n  echo:\n    command: cat\n' >"$WORK/config.yaml"

echo "== checking $(basename "$DEB")"
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's|^\./||' >"$WORK/deb.files"
check_files .deb "$WORK/deb.files" usr/share/zsh/vendor-completions usr/share/doc/mcp-gateway
grep -qxF usr/share/doc/mcp-gateway/copyright "$WORK/deb.files" || problem ".deb: missing /usr/share/doc/mcp-gateway/copyright"
field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == mcp-gateway ]] || problem ".deb: Package is '$(field Package)'"
[[ $(field Version) == "$VERSION-1" ]] || problem ".deb: Version is '$(field Version)', not $VERSION-1"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || problem ".deb: Architecture is '$(field Architecture)'"
[[ $(field Section) == utils ]] || problem ".deb: Section is '$(field Section)'"
[[ $(field Depends) == *libc6* ]] || problem ".deb: Depends ('$(field Depends)') lacks libc6 (\$auto)"
[[ -n $(field Maintainer) ]] || problem ".deb: no Maintainer"
[[ $(field Description) == *"MCP"* ]] || problem ".deb: Description is '$(field Description)'"
# Per-user units only: nothing may enable them globally or run at install time.
scripts=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -t | sed 's|^\./||' | grep -xE 'preinst|postinst|prerm|postrm|config|templates' || true)
[[ -z $scripts ]] || problem ".deb: has maintainer scripts: $(echo "$scripts" | tr '\n' ' ')"
dpkg-deb -f "$DEB" Package Version Architecture Section Depends Installed-Size | sed 's/^/   /'

dpkg-deb -x "$DEB" "$WORK/deb"
check_tree .deb "$WORK/deb" usr/share/zsh/vendor-completions
# systemd-analyze verify checks the units' syntax, that ExecStart's binary runs
# and that the Documentation= man page exists: run it on copies pointing at the
# extracted binary (--root does not work with --user), with the extracted man
# pages. It needs a runtime directory, not a running manager.
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$WORK/units" "$WORK/runtime" && chmod 700 "$WORK/runtime"
    for unit in "$WORK"/deb/usr/lib/systemd/user/*; do
        sed "s|/usr/bin/mcp-gateway|$WORK/deb/usr/bin/mcp-gateway|" "$unit" >"$WORK/units/$(basename "$unit")"
    done
    man=yes
    command -v man >/dev/null || man=no
    verify=$(XDG_RUNTIME_DIR="$WORK/runtime" MANPATH="$WORK/deb/usr/share/man" systemd-analyze --user verify \
        --man="$man" "$WORK"/units/* 2>&1) || true
    [[ -z $verify ]] || problem ".deb: systemd-analyze verify on the packaged units: $verify"
fi

echo "== checking $(basename "$RPM")"
rpm -qlp "$RPM" 2>/dev/null | sed 's|^/||' >"$WORK/rpm.files"
check_files .rpm "$WORK/rpm.files" usr/share/zsh/site-functions usr/share/licenses/mcp-gateway
rpm -K --nosignature "$RPM" >/dev/null 2>&1 || problem ".rpm: digests do not verify (rpm -K)"
qf() { rpm -qp --qf "$1" "$RPM" 2>/dev/null; }
[[ $(qf '%{NAME}') == mcp-gateway ]] || problem ".rpm: Name is '$(qf '%{NAME}')'"
[[ $(qf '%{VERSION}') == "$VERSION" ]] || problem ".rpm: Version is '$(qf '%{VERSION}')', not $VERSION"
[[ $(qf '%{ARCH}') == "$(uname -m)" ]] || problem ".rpm: Architecture is '$(qf '%{ARCH}')'"
[[ $(qf '%{LICENSE}') == "MIT OR Apache-2.0" ]] || problem ".rpm: License is '$(qf '%{LICENSE}')'"
[[ $(qf '%{SUMMARY}') == *MCP* ]] || problem ".rpm: Summary is '$(qf '%{SUMMARY}')'"
rpm -qpR "$RPM" 2>/dev/null | grep -q '^libc\.so\.6' || problem ".rpm: no libc.so.6 among its requirements"
[[ -z $(rpm -qp --scripts "$RPM" 2>/dev/null) ]] || problem ".rpm: has install scripts"
for bin in mcp-gateway mcp-gateway-connect; do
    mode=$(qf '[%{FILEMODES:perms} %{FILENAMES}\n]' | awk -v f="/usr/bin/$bin" '$2 == f {print $1}')
    [[ $mode == -rwxr-xr-x ]] || problem ".rpm: /usr/bin/$bin has mode '$mode'"
done
mkdir "$WORK/rpm"
rpm2archive - <"$RPM" | tar -xzf - -C "$WORK/rpm"
check_tree .rpm "$WORK/rpm" usr/share/zsh/site-functions
rpm -qip "$RPM" 2>/dev/null | grep -E '^(Name|Version|Release|Architecture|License|Size|Summary) ' | sed 's/^/   /'

INSTALL_START=$SECONDS
echo "== lintian $(basename "$DEB"), rpmlint $(basename "$RPM")"
# Clean but for the overrides the .deb ships (packaging/debian/lintian-overrides)
# and the filters in packaging/rpm/rpmlint.toml, each explained in packaging/README.md.
lint=$(lintian --fail-on error,warning "$DEB" 2>&1) || problem ".deb: lintian: $lint"
lint=$(rpmlint -c packaging/rpm/rpmlint.toml "$RPM" 2>&1) || problem ".rpm: rpmlint: $(echo "$lint" | grep -E '^mcp-gateway')"

# Installed for real (tests/packaging/install.sh): the .deb with dpkg, used
# under a real `systemd --user`, upgraded to a newer package while a session
# is open, purged; the .rpm into a scratch root and erased. It needs root, a
# mount namespace and systemd's binaries; elsewhere it says so and is skipped.
if ((EUID == 0)) && command -v unshare >/dev/null && [[ -x /usr/lib/systemd/systemd ]]; then
    echo "== installing them (dpkg, systemd --user, rpm)"
    # The same binaries as a newer package revision: the upgrade installs it over the first.
    cargo deb --no-build "${DEB_ARGS[@]}" --fast --deb-revision 2 --output "$WORK/newer/" </dev/null >/dev/null
    if ! TMPDIR=$WORK unshare -m --propagation private bash tests/packaging/install.sh "$DEB" "$WORK"/newer/*.deb "$RPM" \
        "$VERSION" "$PWD/tests/fixtures/fixture_server.py" >"$WORK/install.out" 2>&1; then
        problem "installing them: $(grep -E '^FAILED' "$WORK/install.out" || tail -n 5 "$WORK/install.out")"
    fi
    sed 's/^/   /' "$WORK/install.out"
else
    echo "== not installing them: that needs root, unshare and systemd (tests/packaging/install.sh)"
fi

if ((${#problems[@]} > 0)); then
    echo "!! the packages are not right:" >&2
    printf '!!   %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "packages: $(basename "$DEB") ($(wc -l <"$WORK/deb.files") entries), $(basename "$RPM") ($(wc -l <"$WORK/rpm.files") files), all checks passed"
echo "packages: ${TOOLS_SECS}s tools, ${BUILD_SECS}s release build, $((SECONDS - START - TOOLS_SECS - BUILD_SECS))s packaging and checks ($((SECONDS - INSTALL_START))s of them linting and installing)"
