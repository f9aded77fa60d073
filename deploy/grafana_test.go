package deploy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const dashboardFile = "grafana/provisioner-dashboard.json"

// dashboard is the part of Grafana's dashboard JSON model these tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
	} `json:"targets"`
}

type datasource struct{ Type, UID string }

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

var (
	metricRE     = regexp.MustCompile(`\bprovisioner_[a-z0-9_]+`)
	metricDefRE  = regexp.MustCompile(`Name:\s*"(provisioner_[a-z0-9_]+)"`)
	histogramRE  = regexp.MustCompile(`_(bucket|sum|count)$`)
	counterUseRE = regexp.MustCompile(`(rate|increase)\((provisioner_[a-z0-9_]+_total)\b`)
)

// definedMetrics finds the metric names the provisioner registers, from its non-test sources.
func definedMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, dir := range []string{"../cmd", "../internal"} {
		err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range metricDefRE.FindAllStringSubmatch(string(src), -1) {
				if !slices.Contains(names, m[1]) {
					names = append(names, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	return names
}

// TestDashboard checks the Grafana dashboard against the metrics the provisioner actually
// registers: every metric shows on it and every name on it exists (a renamed metric breaks a
// panel silently in Grafana), counters are only read through rate or increase, every query uses
// the dashboard's data source variable, and panels neither share ids nor overlap.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed to import and link the dashboard", d.UID, d.Title)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") {
		t.Errorf("no datasource variable (have %v): the dashboard would be tied to one Grafana's data source uid", vars)
	}

	used := map[string]bool{}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				base := histogramRE.ReplaceAllString(m, "")
				used[base] = true
				if strings.HasSuffix(m, "_total") && !slices.ContainsFunc(counterUseRE.FindAllStringSubmatch(tg.Expr, -1), func(c []string) bool { return c[2] == m }) {
					t.Errorf("panel %q: counter %s read without rate or increase: %s", p.Title, m, tg.Expr)
				}
			}
		}
	}
	var onDashboard []string
	for m := range used {
		onDashboard = append(onDashboard, m)
	}
	slices.Sort(onDashboard)
	defined := definedMetrics(t)
	if len(defined) == 0 {
		t.Fatal("found no metric definitions in ../cmd and ../internal")
	}
	if diff := cmp.Diff(defined, onDashboard); diff != "" {
		t.Errorf("metrics the provisioner registers (-) vs metrics on the dashboard (+); add a panel for a new metric, fix a renamed one:\n%s", diff)
	}

	for i, a := range d.Panels {
		for _, b := range d.Panels[i+1:] {
			if a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
				a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
		if a.GridPos.X+a.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the 24-column grid", a.Title)
		}
	}
}

// TestDashboardPromQL has Prometheus' own parser check every query, through `promtool check rules`
// on a rules file made of them (Grafana's $__rate_interval and $template replaced by values). It
// needs promtool (Debian package prometheus) and is skipped without it.
func TestDashboardPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	d := readDashboard(t)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	replacer := strings.NewReplacer("$__rate_interval", "5m", "$template", ".*")
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel%d:%s", p.ID, strings.ToLower(tg.RefID)), Expr: replacer.Replace(tg.Expr)})
		}
	}
	// JSON is YAML, which promtool reads.
	data, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(string(out), want) {
		t.Errorf("promtool output %q lacks %q", out, want)
	}
}
