#!/usr/bin/env bash
# Builds Kueue's manager (sigs.k8s.io/kueue/cmd/kueue) from the Go module proxy into a cache folder
# that internal/testenv reads through KUEUE_ASSETS, together with the manifests testenv installs from
# the same module version: the CRDs (config/components/crd/bases) and the webhook configurations
# (config/components/webhook/manifests.yaml).
#
# Why build: this machine reaches only the Go module proxy, so Kueue's release images and manifests
# cannot be downloaded. A throwaway wrapper module requires sigs.k8s.io/kueue at KUEUE_VERSION and
# builds its main with Kueue's own dependency versions (its go.mod has no replace directives), so
# nothing of Kueue's dependency set reaches the provisioner's go.mod. Idempotent: a stamp per
# version makes a second run a no-op. The build runs under nice: it takes minutes on 2 cores and
# other work should keep going meanwhile.
#
# Prints the assets folder (for KUEUE_ASSETS) on its last line.
set -euo pipefail

KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${KUEUE_CACHE:-$root/.cache/kueue}"
out="$cache/$KUEUE_VERSION"
stamp="$out/.stamp"

complete() {
  [[ -f "$stamp" && -x "$out/bin/kueue" && -f "$out/webhook/manifests.yaml" ]] && compgen -G "$out/crd/*.yaml" >/dev/null
}

if complete; then
  echo "$out"
  exit 0
fi

# One build at a time: two `go build`s writing the same binary would waste the shared CPU and could
# leave a half-written binary behind. The loser waits, then finds the stamp and returns at once.
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    echo ">> another build of Kueue is running; waiting for it" >&2
    flock 9
  fi
  if complete; then
    echo "$out"
    exit 0
  fi
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mod="$cache/src"
mkdir -p "$out/bin" "$mod"
rm -f "$out/bin"/*.partial "$stamp"
echo ">> kueue $KUEUE_VERSION into $out" >&2

if [[ ! -f "$mod/go.mod" ]] || ! grep -q "sigs.k8s.io/kueue $KUEUE_VERSION" "$mod/go.mod"; then
  rm -f "$mod/go.mod" "$mod/go.sum"
  (cd "$mod" && go mod init kueue.local/wrapper >/dev/null 2>&1)
  echo "require sigs.k8s.io/kueue $KUEUE_VERSION" >>"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/kueue/cmd/kueue"
GO
fi

# The module's own files: the manifests below must come from the same version as the binary.
src="$(cd "$mod" && go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
if [[ -z "$src" || ! -d "$src/config/components/crd/bases" || ! -f "$src/config/components/webhook/manifests.yaml" ]]; then
  echo "!! sigs.k8s.io/kueue@$KUEUE_VERSION: no config/components/crd/bases or webhook/manifests.yaml in '$src'" >&2
  exit 1
fi

echo ">> building kueue" >&2
ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
# Built beside the target and renamed: an interrupted build never leaves a truncated binary under
# the real name.
(cd "$mod" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/bin/kueue.partial" sigs.k8s.io/kueue/cmd/kueue)

# Stamp only a binary that runs and was built from the version asked for: a silent mismatch would
# have every test run against something other than what the folder name promises.
got="$(go version -m "$out/bin/kueue.partial" | awk '$1 == "mod" && $2 == "sigs.k8s.io/kueue" {print $3}')"
if [[ "$got" != "$KUEUE_VERSION" ]]; then
  echo "!! kueue binary is built from sigs.k8s.io/kueue '$got', want '$KUEUE_VERSION'" >&2
  exit 1
fi
if ! "$out/bin/kueue.partial" -h 2>&1 | grep -q -- '-config'; then
  echo "!! kueue -h does not print its usage; the binary does not run" >&2
  exit 1
fi
mv -f "$out/bin/kueue.partial" "$out/bin/kueue"

rm -rf "$out/crd" "$out/webhook"
mkdir -p "$out/crd" "$out/webhook"
cp "$src"/config/components/crd/bases/*.yaml "$out/crd/"
cp "$src/config/components/webhook/manifests.yaml" "$out/webhook/manifests.yaml"
chmod -R u+w "$out/crd" "$out/webhook"

# Written to a temporary name and renamed, so a reader never sees a stamp without its content.
{
  date -u +%FT%TZ
  echo "kueue $KUEUE_VERSION"
  go version
} >"$stamp.partial"
mv -f "$stamp.partial" "$stamp"
echo ">> kueue: $(du -h "$out/bin/kueue" | cut -f1)" >&2
echo "$out"
