package nodesim

import (
	"flag"
	"os"
	"testing"

	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

// env is the package's one real control plane (kube-apiserver + etcd): the simulator is only
// worth anything against the apiserver's own rules for binding, status updates and deletion.
var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing runs this binary once per fuzz worker; a control plane in each would be seconds of
	// start-up and hundreds of MB for targets that never touch it. The end-to-end tests fail (not
	// skip) without one, so `go test -fuzz X` needs `-run '^$'`.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m, testenv.Options{}, &env)
}

// requireEnv stops an end-to-end test that has no control plane (only possible while fuzzing).
func requireEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Fatal("no control plane: run fuzz targets with -run '^$'")
	}
}
