#!/usr/bin/env bash
# Re-vendor the chat page's three JavaScript libraries from the npm registry:
#   markdown-it (Markdown -> HTML), DOMPurify (HTML sanitizer) and oidc-client-ts (OpenID
#   Connect sign-in with PKCE, used only when the gateway has auth.jwt.client_id).
#
# The page must work offline and under `script-src 'self'`, so the libraries are shipped as
# static files in src/llm_gateway/ui/static/vendor/, byte for byte as npm publishes them (the
# browser builds, which need no eval), with their licences and those of the packages markdown-it
# and oidc-client-ts bundle into their browser builds, and a VERSIONS file recording what came
# from where.
#
# Usage:   scripts/vendor_ui.sh                      # the pinned versions below
#          MARKDOWN_IT_VERSION=15.0.3 DOMPURIFY_VERSION=3.5.0 OIDC_CLIENT_TS_VERSION=3.5.0 \
#            scripts/vendor_ui.sh
# Needs:   node + npm. Then run the browser tests: .venv/bin/python -m pytest tests/browser
set -euo pipefail

MARKDOWN_IT_VERSION="${MARKDOWN_IT_VERSION:-15.0.3}"
DOMPURIFY_VERSION="${DOMPURIFY_VERSION:-3.5.0}"
OIDC_CLIENT_TS_VERSION="${OIDC_CLIENT_TS_VERSION:-3.5.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/src/llm_gateway/ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway project: npm resolves markdown-it's dependency ranges exactly as a user's
# install would, which tells us the versions (and licences) of what its browser build bundles.
cd "$work"
printf '{"name":"llm-gateway-ui-vendor","private":true}\n' >package.json
npm install --ignore-scripts --no-audit --no-fund --save-exact --loglevel=error \
  "markdown-it@$MARKDOWN_IT_VERSION" "dompurify@$DOMPURIFY_VERSION" \
  "oidc-client-ts@$OIDC_CLIENT_TS_VERSION"

nm="$work/node_modules"
mkdir -p "$vendor/licenses"
rm -f "$vendor"/*.js "$vendor"/licenses/*

cp "$nm/markdown-it/dist/browser/markdown-it.umd.min.js" "$vendor/markdown-it.min.js"
cp "$nm/dompurify/dist/purify.min.js" "$vendor/purify.min.js"
# The IIFE build: it defines the global `oidc` (UserManager, WebStorageStateStore, ...).
cp "$nm/oidc-client-ts/dist/browser/oidc-client-ts.min.js" "$vendor/oidc-client-ts.min.js"

# No build may rely on eval or new Function: the page's CSP has no 'unsafe-eval'.
if grep -En '\beval\(|new Function\(' "$vendor"/*.js; then
  echo "a vendored library uses eval/new Function; the CSP forbids it" >&2
  exit 1
fi

# markdown-it's browser build bundles its runtime dependencies (argparse is the CLI's only).
bundled=(entities linkify-it mdurl punycode.js uc.micro)
cp "$nm/markdown-it/LICENSE" "$vendor/licenses/markdown-it.LICENSE"
for dep in "${bundled[@]}"; do
  license="$(ls "$nm/$dep"/LICENSE* | head -n1)"
  cp "$license" "$vendor/licenses/$dep.LICENSE"
done
cp "$nm/dompurify/LICENSE" "$vendor/licenses/dompurify.LICENSE"
[ -f "$nm/dompurify/LICENSE-MPL" ] && cp "$nm/dompurify/LICENSE-MPL" "$vendor/licenses/dompurify.LICENSE-MPL"
# oidc-client-ts's browser build bundles jwt-decode (its only runtime dependency).
cp "$nm/oidc-client-ts/LICENSE" "$vendor/licenses/oidc-client-ts.LICENSE"
cp "$nm/jwt-decode/LICENSE" "$vendor/licenses/jwt-decode.LICENSE"

field() { node -p "require('$nm/$1/package.json').$2"; }
integrity() { node -p "require('$work/package-lock.json').packages['node_modules/$1'].integrity"; }

{
  echo "# Vendored by scripts/vendor_ui.sh from the npm registry on $(date -u +%Y-%m-%d)."
  echo "# The .js files are byte-identical to the published packages' browser builds;"
  echo "# licences are in licenses/. Re-run the script to update."
  for entry in "markdown-it.min.js markdown-it dist/browser/markdown-it.umd.min.js" \
               "purify.min.js dompurify dist/purify.min.js" \
               "oidc-client-ts.min.js oidc-client-ts dist/browser/oidc-client-ts.min.js"; do
    set -- $entry
    echo
    echo "$2 $(field "$2" version), licence $(field "$2" license)"
    echo "  file:          $1 = npm $2@$(field "$2" version) $3"
    echo "  sha256:        $(sha256sum "$vendor/$1" | cut -d' ' -f1)"
    echo "  npm integrity: $(integrity "$2")"
  done
  echo
  echo "Bundled inside markdown-it.min.js (versions as npm resolves markdown-it's ranges):"
  for dep in "${bundled[@]}"; do
    echo "  $dep $(field "$dep" version), licence $(field "$dep" license)"
  done
  echo
  echo "Bundled inside oidc-client-ts.min.js (version as npm resolves oidc-client-ts's range):"
  echo "  jwt-decode $(field jwt-decode version), licence $(field jwt-decode license)"
} >"$vendor/VERSIONS"

cat "$vendor/VERSIONS"
