package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Header opens every report, bench and chaos alike: when and where it was measured. Embedded, its
// fields stand at the top level of the report's JSON ("date", "machine").
type Header struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
}

// NewHeader is now (UTC) on this machine.
func NewHeader() Header { return Header{Date: time.Now().UTC(), Machine: ThisMachine()} }

// Markdown is the report's title and the line that says when and where, then a blank line.
func (h Header) Markdown(title string) string {
	return fmt.Sprintf("# %s\n\nMeasured %s on %s.\n\n", title, h.Date.Format("2006-01-02 15:04 UTC"), h.Machine)
}

// Machine is where a report was measured; figures mean little without it.
type Machine struct {
	CPUModel  string `json:"cpuModel"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int64  `json:"memoryMiB"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Commit    string `json:"commit"`
}

// ThisMachine reads the machine's description from /proc and git (best effort: an unreadable
// part is left empty rather than failing a run that took minutes).
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryMiB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d CPUs, %d MiB memory, Linux %s, %s, commit %s", m.CPUModel, m.CPUs, m.MemoryMiB, m.Kernel, m.Go, m.Commit)
}

// Target is one goal of the issue, with the figure measured against it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Percentiles of a sample, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// percentiles uses the nearest-rank method: every reported value is one that was measured.
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return Percentiles{N: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// median of repeated runs' figures (the lower middle for an even count, so it is a measured value).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[(len(s)-1)/2]
}

// medianPercentiles takes, figure by figure, the median over repetitions.
func medianPercentiles(ps []Percentiles) Percentiles {
	pick := func(f func(Percentiles) float64) float64 {
		var xs []float64
		for _, p := range ps {
			xs = append(xs, f(p))
		}
		return median(xs)
	}
	n := 0
	for _, p := range ps {
		n += p.N
	}
	return Percentiles{N: n, P50: pick(func(p Percentiles) float64 { return p.P50 }), P95: pick(func(p Percentiles) float64 { return p.P95 }),
		P99: pick(func(p Percentiles) float64 { return p.P99 }), Max: pick(func(p Percentiles) float64 { return p.Max })}
}

// WriteReport writes report.json (v, indented) and report.md into dir.
func WriteReport(dir string, v any, markdown string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report folder: %w", err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(markdown), 0o644); err != nil {
		return fmt.Errorf("writing report.md: %w", err)
	}
	return nil
}

// targetsTable renders targets as markdown, and a plain list of the missed ones.
func targetsTable(b *strings.Builder, ts []Target) {
	b.WriteString("| Target | Goal | Measured | Met |\n|---|---|---|---|\n")
	for _, t := range ts {
		met := "yes"
		if !t.Met {
			met = "**NO**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, met)
	}
	var missed []string
	for _, t := range ts {
		if !t.Met {
			missed = append(missed, fmt.Sprintf("- **Missed: %s** — goal %s, measured %s.", t.Name, t.Goal, t.Measured))
		}
	}
	if len(missed) > 0 {
		b.WriteString("\n" + strings.Join(missed, "\n") + "\n")
	} else {
		b.WriteString("\nEvery target met.\n")
	}
}

func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }
