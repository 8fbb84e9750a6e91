#!/usr/bin/env bash
# Rebuilds static/forum/vendor/noble-schnorr.js: BIP-340 Schnorr (secp256k1) and SHA-256 for
# signing Nostr events in the browser, bundled once so the page loads nothing from a CDN.
#
# Needs node >= 18 and npm (the npm registry only). node_modules stays in a temp dir; only the
# built file is committed. Versions are pinned so a rebuild gives the same code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent @noble/curves@1.9.7 @noble/hashes@1.8.0 esbuild@0.28.2
cat > entry.js <<'JS'
export { schnorr } from "@noble/curves/secp256k1";
export { sha256 } from "@noble/hashes/sha256";
export { bytesToHex, hexToBytes, utf8ToBytes, randomBytes } from "@noble/hashes/utils";
JS
{
  echo "/*! noble-schnorr.js: @noble/curves 1.9.7 + @noble/hashes 1.8.0, bundled by build.sh."
  echo " * Both (c) Paul Miller (https://paulmillr.com), MIT License:"
  sed 's/^/ * /' node_modules/@noble/curves/LICENSE
  echo " */"
  npx esbuild entry.js --bundle --minify --format=iife --global-name=NobleSchnorr \
    --target=es2020 --legal-comments=none
} > "$here/noble-schnorr.js"
echo "wrote $here/noble-schnorr.js ($(wc -c < "$here/noble-schnorr.js") bytes)"
