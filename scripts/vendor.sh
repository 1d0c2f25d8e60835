#!/usr/bin/env bash
# Fetches the third-party web assets Boxoffice ships or tests with, from the
# npm registry, pinned by version and checked against the registry's sha512
# integrity: Swagger UI (compiled into the binary for /docs) and axe-core
# (the web app's accessibility check, tests only). The files are committed,
# so no build or test reaches the network; run this only to change a
# version (edit the pins below, with the new `npm view <pkg>@<v> dist.integrity`).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# fetch <package> <version> <integrity> <license> <folder> <file>...
fetch() {
  local name=$1 version=$2 integrity=$3 license=$4 dest=$5
  shift 5
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  curl -fsSL "https://registry.npmjs.org/$name/-/$name-$version.tgz" -o "$tmp/package.tgz"
  local actual
  actual="sha512-$(openssl dgst -sha512 -binary "$tmp/package.tgz" | base64 -w0)"
  [ "$actual" = "$integrity" ] || die "$name $version: integrity $actual, expected $integrity"
  tar -xzf "$tmp/package.tgz" -C "$tmp"
  mkdir -p "$dest"
  for file in "$@"; do cp "$tmp/package/$file" "$dest/"; done
  echo "$name $version from the npm registry ($license), checked against $integrity by scripts/vendor.sh." > "$dest/VERSION"
  echo "$name $version -> $dest"
}

fetch swagger-ui-dist 5.35.0 \
  'sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==' \
  Apache-2.0 api/assets/swagger-ui \
  swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE
fetch axe-core 4.14.1 \
  'sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==' \
  MPL-2.0 tests/assets/axe-core \
  axe.min.js LICENSE
