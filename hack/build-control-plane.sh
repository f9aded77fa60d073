#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, etcd) from the Go module
# proxy into a cache folder that controller-runtime's envtest reads through KUBEBUILDER_ASSETS.
#
# Why build: this machine reaches only the Go module proxy, so envtest's usual download of prebuilt
# binaries is impossible. Throwaway wrapper modules require k8s.io/kubernetes and etcd's server and
# build their mains. Idempotent: a stamp per version makes a second run a no-op.
#
# Prints the assets folder (for KUBEBUILDER_ASSETS) on its last line.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONTROL_PLANE_CACHE:-$root/.cache/control-plane}"
bin="$cache/$KUBE_VERSION-etcd$ETCD_VERSION/bin"
stamp="$bin/.stamp"

if [[ -f "$stamp" && -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/etcd" ]]; then
  echo "$bin"
  exit 0
fi

# One build at a time: several engineers (and `make test` in more than one shell) may ask at once,
# and two `go build`s writing the same binaries would waste the shared CPU and could leave a
# half-written binary behind. The loser waits, then finds the stamp and returns at once.
mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    echo ">> another build of the control plane is running; waiting for it" >&2
    flock 9
  fi
  if [[ -f "$stamp" && -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/etcd" ]]; then
    echo "$bin"
    exit 0
  fi
fi

staging_version="v0.${KUBE_VERSION#v1.}"
major_minor="${KUBE_VERSION#v}"; major="${major_minor%%.*}"; rest="${major_minor#*.}"; minor="${rest%%.*}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$bin" "$cache/src/kube" "$cache/src/etcd"
rm -f "$bin"/*.partial "$stamp"

echo ">> control plane $KUBE_VERSION (etcd $ETCD_VERSION) into $bin" >&2

# --- kube-apiserver and kube-controller-manager -------------------------------------------------
kmod="$cache/src/kube"
if [[ ! -f "$kmod/go.mod" ]] || ! grep -q "k8s.io/kubernetes $KUBE_VERSION" "$kmod/go.mod"; then
  rm -f "$kmod/go.mod" "$kmod/go.sum"
  (cd "$kmod" && go mod init controlplane.local/kube >/dev/null 2>&1)
  kube_gomod="$(cd "$kmod" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders,
    # which a dependent module cannot see: point each at its published release instead.
    grep -E '^[[:space:]]*k8s\.io/[^[:space:]]+ v0\.0\.0$' "$kube_gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}' | sort -u
  } >>"$kmod/go.mod"
  cat >"$kmod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
fi
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kube-controller-manager; do
  echo ">> building $cmd" >&2
  # Build beside the target and rename: an interrupted build never leaves a truncated binary
  # under the real name.
  (cd "$kmod" && go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.partial" "k8s.io/kubernetes/cmd/$cmd")
  mv -f "$bin/$cmd.partial" "$bin/$cmd"
done

# --- etcd -------------------------------------------------------------------------------------------
emod="$cache/src/etcd"
if [[ ! -f "$emod/go.mod" ]] || ! grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$emod/go.mod"; then
  rm -f "$emod/go.mod" "$emod/go.sum"
  (cd "$emod" && go mod init controlplane.local/etcd >/dev/null 2>&1)
  echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" >>"$emod/go.mod"
fi
echo ">> building etcd" >&2
(cd "$emod" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd.partial" go.etcd.io/etcd/server/v3)
mv -f "$bin/etcd.partial" "$bin/etcd"

# Stamp only binaries that report the versions asked for: the ldflags above are what makes
# kube-apiserver say its version (tests check it through discovery), and a silent mismatch would
# have every test run against something other than what the folder name promises.
check_version() {
  local got
  got="$("$bin/$1" --version 2>&1 | sed -n 1p)"
  if [[ "$got" != "$2" ]]; then
    echo "!! $1 --version says '$got', want '$2'" >&2
    exit 1
  fi
  echo ">> $1: $got" >&2
}
check_version kube-apiserver "Kubernetes $KUBE_VERSION"
check_version kube-controller-manager "Kubernetes $KUBE_VERSION"
check_version etcd "etcd Version: ${ETCD_VERSION#v}"

# Written to a temporary name and renamed, so a reader never sees a stamp without its content.
{
  date -u +%FT%TZ
  echo "kubernetes $KUBE_VERSION etcd $ETCD_VERSION"
  go version
} >"$stamp.partial"
mv -f "$stamp.partial" "$stamp"
echo "$bin"
