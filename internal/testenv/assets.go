package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	// KubernetesVersion is the control plane release hack/build-control-plane.sh builds by default;
	// the cache folder is named after it so that a version bump can never silently reuse old binaries.
	KubernetesVersion = "v1.37.2"
	// EtcdVersion is the etcd release built next to it (also part of the cache folder's name).
	EtcdVersion = "v3.6.16"

	// assetsEnv is envtest's own variable, honoured so that a machine with setup-envtest binaries
	// (or a CI cache elsewhere) can point us at them without touching this package.
	assetsEnv = "KUBEBUILDER_ASSETS"
	// stampFile is written by hack/build-control-plane.sh after every binary built; binaries without
	// it are a build in progress or one that was interrupted, and must not be trusted.
	stampFile = ".stamp"

	binAPIServer         = "kube-apiserver"
	binEtcd              = "etcd"
	binControllerManager = "kube-controller-manager"
)

// howToBuild is appended to every "binaries missing" error, because the fix is always the same and
// the person reading a failed test run should not have to go looking for it.
const howToBuild = "run `make control-plane` (or hack/build-control-plane.sh) from the module root, " +
	"or set " + assetsEnv + " to a folder holding kube-apiserver, etcd and kube-controller-manager"

// AssetsDir returns the folder holding the control plane binaries: $KUBEBUILDER_ASSETS when set,
// else <module root>/.cache/control-plane/<KubernetesVersion>-etcd<EtcdVersion>/bin, where the
// module root is found by walking up from the working directory to go.mod (go test runs each
// package in its own folder, so a fixed relative path would differ per package).
//
// It fails, naming the fix, when kube-apiserver or etcd is missing, or when the default folder has
// no .stamp (its build has not finished). kube-controller-manager is checked by Start only when
// Options.GarbageCollector asks for it.
func AssetsDir() (string, error) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		if err := checkBinaries(dir, binAPIServer, binEtcd); err != nil {
			return "", fmt.Errorf("%s=%s: %w", assetsEnv, dir, err)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the control plane binaries: working directory: %w", err)
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		return "", fmt.Errorf("finding the control plane binaries: %w; set %s instead", err, assetsEnv)
	}
	dir := filepath.Join(root, ".cache", "control-plane", KubernetesVersion+"-etcd"+EtcdVersion, "bin")
	if _, err := os.Stat(filepath.Join(dir, stampFile)); err != nil {
		return "", fmt.Errorf("control plane binaries not built in %s (no %s: the build has not run or has not finished): %s",
			dir, stampFile, howToBuild)
	}
	if err := checkBinaries(dir, binAPIServer, binEtcd); err != nil {
		return "", err
	}
	return dir, nil
}

// ModuleRoot returns the nearest folder at or above dir holding a go.mod. Test rigs use it to find
// the module (to build the binary, or the shared fixtures beside the checkout) wherever `go test`
// or `go run` started them.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("module root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or any parent: not inside the module")
		}
		dir = parent
	}
}

// checkBinaries fails, naming every missing or non-executable binary at once, so that a half-built
// folder is diagnosed in one run rather than one binary per run.
func checkBinaries(dir string, names ...string) error {
	var missing []string
	for _, name := range names {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control plane binaries %q missing or not executable in %s: %s", missing, dir, howToBuild)
	}
	return nil
}
