package testenv

import (
	"fmt"
	"os"
	"path/filepath"
)

const (
	// KueueVersion is the Kueue release hack/build-kueue.sh builds by default; its cache folder is
	// named after it so that a version bump can never silently reuse an old binary.
	KueueVersion = "v0.17.0"
	// KueueNamespace is Kueue's own namespace (its Configuration's namespace). Kueue's webhooks
	// and managedJobsNamespaceSelector leave it and kube-system alone, as Kueue's release
	// manifests do.
	KueueNamespace = "kueue-system"

	// kueueAssetsEnv points at a folder laid out as hack/build-kueue.sh writes it: bin/kueue,
	// crd/*.yaml and webhook/manifests.yaml.
	kueueAssetsEnv = "KUEUE_ASSETS"

	kueueBinary     = "bin/kueue"
	kueueCRDDir     = "crd"
	kueueWebhookDir = "webhook"
)

const howToBuildKueue = "run `make kueue` (or hack/build-kueue.sh) from the module root, or set " +
	kueueAssetsEnv + " to a folder holding bin/kueue, crd/ and webhook/manifests.yaml of Kueue " + KueueVersion

// KueueAssetsDir returns the folder holding Kueue's binary and manifests: $KUEUE_ASSETS when set,
// else <module root>/.cache/kueue/<KueueVersion>. It fails, naming the fix, when the binary,
// CRDs or webhook manifests are missing, or when the default folder has no .stamp (its build has
// not finished).
func KueueAssetsDir() (string, error) {
	dir := os.Getenv(kueueAssetsEnv)
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("finding Kueue: working directory: %w", err)
		}
		root, err := ModuleRoot(wd)
		if err != nil {
			return "", fmt.Errorf("finding Kueue: %w; set %s instead", err, kueueAssetsEnv)
		}
		dir = filepath.Join(root, ".cache", "kueue", KueueVersion)
		if _, err := os.Stat(filepath.Join(dir, stampFile)); err != nil {
			return "", fmt.Errorf("kueue not built in %s (no %s: the build has not run or has not finished): %s",
				dir, stampFile, howToBuildKueue)
		}
	}
	if err := checkKueueAssets(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// KueueAssetsGiven reports whether $KUEUE_ASSETS is set. Tests that need Kueue skip under
// `go test -short` when it is not (a quick run should not wait for a 7-minute build); otherwise
// they run and fail with KueueAssetsDir's instruction.
func KueueAssetsGiven() bool { return os.Getenv(kueueAssetsEnv) != "" }

// checkKueueAssets names everything missing at once.
func checkKueueAssets(dir string) error {
	var missing []string
	if info, err := os.Stat(filepath.Join(dir, kueueBinary)); err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		missing = append(missing, kueueBinary)
	}
	if crds, _ := filepath.Glob(filepath.Join(dir, kueueCRDDir, "*.yaml")); len(crds) == 0 {
		missing = append(missing, kueueCRDDir+"/*.yaml")
	}
	if _, err := os.Stat(filepath.Join(dir, kueueWebhookDir, "manifests.yaml")); err != nil {
		missing = append(missing, kueueWebhookDir+"/manifests.yaml")
	}
	if len(missing) > 0 {
		return fmt.Errorf("kueue assets %q missing in %s: %s", missing, dir, howToBuildKueue)
	}
	return nil
}
