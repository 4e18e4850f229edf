#!/usr/bin/env bash
# Makes a release from one version number: nothing in it is edited by hand.
#
#   scripts/release.sh VERSION          # e.g. 0.2.0
#
# 1. Unless the tag vVERSION exists: sets the version in Cargo.toml (and
#    Cargo.lock), regenerates the man pages (they carry it), points the
#    repository's formula at the new tarball, commits "mcp-gateway VERSION"
#    and tags vVERSION. The tree must be clean.
# 2. The source tarball from the tag: dist/mcp-gateway-VERSION.tar.gz
#    (`git archive`, gzip -n: the same bytes from the same tag).
# 3. The .deb and .rpm built from that tarball's own tree by its
#    scripts/package.sh (which also checks them, lints them and installs them
#    for real), with the releasing person as the .deb's maintainer:
#    MCP_GATEWAY_MAINTAINER ("Name <email>"), else DEBFULLNAME and DEBEMAIL,
#    else git's user.name and user.email.
# 4. The Homebrew formula for a tap, dist/mcp-gateway.rb: packaging/homebrew's
#    with the release tarball's url and sha256 (the formula cannot live in the
#    tarball it names a digest of).
# 5. dist/SHA256SUMS.
#
# Publishing stays a person's decision: the script ends by printing the
# commands (push the tag, upload dist/ to the GitHub release, copy the formula
# into the tap).
#
#   scripts/release.sh --formula VERSION TARBALL   # only print the formula for it
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's address, from Cargo.toml (`repository`).
REPOSITORY=$(sed -nE 's/^repository = "([^"]+)"/\1/p' Cargo.toml | head -n1)
[[ -n $REPOSITORY ]] || { echo "release.sh: Cargo.toml has no repository" >&2; exit 1; }

tarball_url() { echo "$REPOSITORY/releases/download/v$1/mcp-gateway-$1.tar.gz"; }

# The formula for VERSION whose release tarball is the file TARBALL.
formula() { # version tarball
    local sha
    sha=$(sha256sum "$2" | cut -d' ' -f1)
    sed -E -e "s|^(  url )\".*\"|\\1\"$(tarball_url "$1")\"|" -e "s|^(  sha256 )\".*\"|\\1\"$sha\"|" \
        -e "s|^(  homepage )\".*\"|\\1\"$REPOSITORY\"|" packaging/homebrew/mcp-gateway.rb
}

if [[ ${1:-} == --formula ]]; then
    [[ $# -eq 3 && -f $3 ]] || { echo "usage: release.sh --formula VERSION TARBALL" >&2; exit 2; }
    formula "$2" "$3"
    exit 0
fi

VERSION=${1:?usage: scripts/release.sh VERSION}
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || {
    echo "release.sh: '$VERSION' is not a version (MAJOR.MINOR.PATCH)" >&2
    exit 2
}
TAG=v$VERSION

MAINTAINER=${MCP_GATEWAY_MAINTAINER:-}
if [[ -z $MAINTAINER && -n ${DEBFULLNAME:-} && -n ${DEBEMAIL:-} ]]; then
    MAINTAINER="$DEBFULLNAME <$DEBEMAIL>"
fi
if [[ -z $MAINTAINER ]] && git config user.name >/dev/null && git config user.email >/dev/null; then
    MAINTAINER="$(git config user.name) <$(git config user.email)>"
fi
[[ $MAINTAINER =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || {
    echo "release.sh: set MCP_GATEWAY_MAINTAINER=\"Name <email>\" (the .deb's Maintainer)" >&2
    exit 2
}

if ! git rev-parse -q --verify "refs/tags/$TAG" >/dev/null; then
    [[ -z $(git status --porcelain) ]] || { echo "release.sh: the tree has uncommitted changes" >&2; exit 1; }
    current=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -n1)
    if [[ $current != "$VERSION" ]]; then
        echo "== version $current -> $VERSION"
        sed -i -E "0,/^version = \"[^\"]+\"/s//version = \"$VERSION\"/" Cargo.toml
        cargo update --workspace --offline --quiet
        cargo run --quiet --locked --bin mcp-gateway -- manpages man
        cargo run --quiet --locked --bin mcp-gateway -- completions completions
        # The formula in the repository names this version's tarball (its digest is the tap copy's).
        sed -i -E "s|^(  url )\".*\"|\1\"$(tarball_url "$VERSION")\"|" packaging/homebrew/mcp-gateway.rb
        git add Cargo.toml Cargo.lock man completions packaging/homebrew/mcp-gateway.rb
        git commit --quiet -m "mcp-gateway $VERSION"
    fi
    git tag -a "$TAG" -m "mcp-gateway $VERSION"
    echo "== tagged $TAG"
fi

DIST=$PWD/dist
rm -rf "$DIST"
mkdir -p "$DIST"
TARBALL=$DIST/mcp-gateway-$VERSION.tar.gz
git archive --format=tar --prefix="mcp-gateway-$VERSION/" "$TAG" | gzip -9n >"$TARBALL"
echo "== $TARBALL"

# The packages come from the tarball's tree, so they are exactly the release.
SRC=$(mktemp -d "${TMPDIR:-/tmp}/mcp-gateway-release.XXXXXX")
trap 'rm -rf "$SRC"' EXIT
tar -xzf "$TARBALL" -C "$SRC"
MCP_GATEWAY_MAINTAINER=$MAINTAINER bash "$SRC/mcp-gateway-$VERSION/scripts/package.sh"
cp "$SRC/mcp-gateway-$VERSION"/target/packages/* "$DIST/"

formula "$VERSION" "$TARBALL" >"$DIST/mcp-gateway.rb"
(cd "$DIST" && sha256sum -- *.tar.gz *.deb *.rpm mcp-gateway.rb >SHA256SUMS)
echo "== release $VERSION in $DIST:"
sed 's/^/   /' "$DIST/SHA256SUMS"
cat <<EOF

To publish:
  git push origin HEAD $TAG
  gh release create $TAG --title "mcp-gateway $VERSION" dist/*.tar.gz dist/*.deb dist/*.rpm dist/SHA256SUMS
  cp dist/mcp-gateway.rb <your tap>/Formula/mcp-gateway.rb
EOF
