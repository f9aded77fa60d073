package pluginimport

import (
	"fmt"
	"sort"
)

// Kind says what happened to a field of the plugin's configuration.
type Kind string

const (
	// Dropped: the field is not carried over; Reason says why and what to do instead.
	Dropped Kind = "dropped"
	// Changed: carried over, but not verbatim (a name made DNS-safe, a cap folded in).
	Changed Kind = "changed"
	// Setting: the field becomes a PROVISIONER_* setting rather than a template field.
	Setting Kind = "setting"
	// PerPipeline: a pipeline defines its pod inline, which a provisioner outside Jenkins cannot
	// serve.
	PerPipeline Kind = "per-pipeline"
)

// Finding is one line of the import report.
type Finding struct {
	File    string
	Line    int
	Subject string // "template maven", "cloud kubernetes"
	Field   string // the plugin's field name, as written
	Kind    Kind
	Reason  string
}

func (f Finding) String() string {
	subj := f.Subject
	if f.Field != "" {
		subj += ": " + f.Field
	}
	return fmt.Sprintf("%s:%d: %s: %s: %s", f.File, f.Line, subj, f.Kind, f.Reason)
}

func (im *importer) add(kind Kind, file string, line int, subject, field, format string, args ...any) {
	if file == helmDefaultsName || line >= defaultsLineBase {
		return // the chart's defaults, which the user did not write
	}
	im.findings = append(im.findings, Finding{File: file, Line: line, Subject: subject, Field: field, Kind: kind, Reason: fmt.Sprintf(format, args...)})
}

func (im *importer) dropf(file string, line int, subject, field, format string, args ...any) {
	im.add(Dropped, file, line, subject, field, format, args...)
}

func (im *importer) changef(file string, line int, subject, field, format string, args ...any) {
	im.add(Changed, file, line, subject, field, format, args...)
}

// sortFindings orders the report by file and line, as the loader orders its errors.
func sortFindings(fs []Finding) []Finding {
	seen := map[Finding]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	fs = out
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].File != fs[j].File {
			return fs[i].File < fs[j].File
		}
		return fs[i].Line < fs[j].Line
	})
	return fs
}
