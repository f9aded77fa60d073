// Package apiservertest has the real kube-apiserver validate the pods of imported real
// configuration files, as `provisioner templates check` does with a cluster. It is its own package
// because testenv.Main starts a control plane for every test binary that uses it, and the
// importer's unit tests and fuzzer should not pay for one.
package apiservertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/pluginimport"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}, &env) }

// TestImportedPodsPassServerSideDryRun imports every real file in ../testdata and creates each
// selectable template's pod and Secret with dryRun=All. A pod may be refused only where the import
// reported why: a Helm template expression ({{ ... }}) it had to leave as written.
func TestImportedPodsPassServerSideDryRun(t *testing.T) {
	files, err := filepath.Glob("../testdata/*/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no real files: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	checked := 0
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			res, err := pluginimport.Import([]pluginimport.Input{{Name: file, Data: data}}, pluginimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			expressions := false
			for _, f := range res.Findings {
				expressions = expressions || strings.Contains(f.Reason, "Helm template expression")
			}
			set, err := podtemplate.Parse(file, res.YAML)
			if err != nil {
				t.Fatal(err)
			}
			for _, tpl := range set.Templates {
				if !tpl.Selectable() {
					continue
				}
				checked++
				pod, secret, err := podtemplate.Render(tpl, podtemplate.Identity{
					Name: podtemplate.NewAgentName(tpl.Name), Namespace: "default",
					Secret: strings.Repeat("ab", 32), JenkinsURL: "https://jenkins.example.com/",
				})
				if err != nil {
					t.Fatalf("%s: %v", tpl.Name, err)
				}
				if _, err := env.Client.CoreV1().Secrets("default").Create(ctx, secret, dry); err != nil {
					t.Errorf("%s: Secret rejected: %v", tpl.Name, err)
				}
				_, err = env.Client.CoreV1().Pods("default").Create(ctx, pod, dry)
				switch {
				case err != nil && !expressions:
					t.Errorf("%s (%s): pod rejected: %v", tpl.Name, tpl.Source, err)
				case err != nil:
					t.Logf("%s: pod rejected, as the reported Helm expressions predict: %v", tpl.Name, err)
				}
			}
		})
	}
	if checked < 20 {
		t.Errorf("only %d templates checked", checked)
	}
}
