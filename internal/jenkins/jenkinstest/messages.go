package jenkinstest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Jenkins localizes every human text it exports (Localizable messages rendered with the request's
// locale), so `why` depends on Accept-Language. The emulator carries the English texts of current
// core (names quoted with U+2018/U+2019 since 2.125) and the German ones of
// hudson/model/Messages_de.properties and hudson/Messages_de.properties; keys missing from the German
// bundle fall back to English, as Java's ResourceBundle does.

type lang int

const (
	langEN lang = iota
	langDE
)

var messages = map[lang]map[string]string{
	langEN: {
		"Queue.AllNodesOffline":                          "All nodes of label ‘{0}’ are offline",
		"Queue.LabelHasNoNodes":                          "There are no nodes with the label ‘{0}’",
		"Queue.NodeOffline":                              "‘{0}’ is offline",
		"Queue.WaitingForNextAvailableExecutor":          "Waiting for next available executor",
		"Queue.WaitingForNextAvailableExecutorOn":        "Waiting for next available executor on ‘{0}’",
		"Queue.InQuietPeriod":                            "In the quiet period. Expires in {0}",
		"Queue.FinishedWaiting":                          "Finished waiting",
		"Queue.node_has_been_removed_from_configuration": "{0} has been removed from configuration",
		"Node.BecauseNodeIsReserved":                     "‘{0}’ is reserved for jobs with matching label expression",
		"Node.BecauseNodeIsNotAcceptingTasks":            "‘{0}’ is not accepting tasks",
		"Node.LabelMissing":                              "‘{0}’ doesn’t have label ‘{1}’",
		"AbstractProject.BuildInProgress":                "Build #{0} is already in progress{1}",
		"AbstractProject.ETA":                            " (ETA: {0})",
		"Executor.NotAvailable":                          "N/A",
		"Util.millisecond":                               "{0} ms",
		"Util.second":                                    "{0} sec",
		"Util.minute":                                    "{0} min",
		"Util.hour":                                      "{0} hr",
		"Util.day":                                       "{0} day|days",
		"ComputerSet.SlaveAlreadyExists":                 "Agent called ‘{0}’ already exists",
		"Hudson.NoName":                                  "No name is specified",
		"Hudson.UnsafeChar":                              "‘{0}’ is an unsafe character",
		"Jenkins.NotAllowedName":                         "“{0}” is not an allowed name",
		"Hudson.ControlCodeNotAllowed":                   "No control code is allowed: {0}",
		"Slave.InvalidConfig.Executors":                  "Invalid agent configuration for {0}. Invalid # of executors.",
		"Slave.InvalidConfig.NoName":                     "Invalid agent configuration. Name is empty",
		"Hudson.Computer.DisplayName":                    "Built-In Node",
		"Hudson.NodeDescription":                         "the Jenkins controller's built-in node",
		"AccessDenied":                                   "{0} is missing the {1} permission",
	},
	langDE: {
		"Queue.AllNodesOffline":                          "Alle Knoten des Labels „{0}“ sind offline",
		"Queue.LabelHasNoNodes":                          "Es gibt keine Knoten mit dem Label „{0}“",
		"Queue.NodeOffline":                              "{0} ist offline",
		"Queue.WaitingForNextAvailableExecutor":          "Warte auf den nächsten freien Build-Prozessor",
		"Queue.WaitingForNextAvailableExecutorOn":        "Warte auf den nächsten freien Build-Prozessor auf {0}",
		"Queue.InQuietPeriod":                            "In Ruhe-Periode. Endet in {0}",
		"Queue.node_has_been_removed_from_configuration": "Der Knoten „{0}“ wurde entfernt",
		"Node.BecauseNodeIsReserved":                     "„{0}“ ist für Projekte mit passendem Label-Ausdruck reserviert",
		"Node.BecauseNodeIsNotAcceptingTasks":            "„{0}“ nimmt keine Tasks an.",
		"Node.LabelMissing":                              "„{0}“ hat nicht das Label „{1}“",
		"Executor.NotAvailable":                          "nicht verfügbar",
		"Util.millisecond":                               "{0} ms",
		"Util.second":                                    "{0} Sekunde|Sekunden",
		"Util.minute":                                    "{0} Minute|Minuten",
		"Util.hour":                                      "{0} Stunde|Stunden",
		"Util.day":                                       "{0} Tag|Tage",
		"ComputerSet.SlaveAlreadyExists":                 "Ein Agent mit dem Namen „{0}“ existiert bereits.",
		"Hudson.NoName":                                  "Kein Name angegeben",
		"Hudson.UnsafeChar":                              "„{0}“ ist kein „sicheres“ Zeichen",
		"Jenkins.NotAllowedName":                         "„{0}“ ist kein erlaubter Name",
		"Hudson.ControlCodeNotAllowed":                   "Kontrollcodes nicht erlaubt: {0}",
	},
}

// msg formats one message in the given language: {N} placeholders, and the emulator's shorthand
// "{0} one|many" for Java's {0,choice,0#many|1#one|1<many} (numbers are formatted by the caller).
func msg(l lang, key string, args ...string) string {
	t, ok := messages[l][key]
	if !ok {
		t, ok = messages[langEN][key]
		if !ok {
			panic("jenkinstest: no message " + key) // a programming error in this package
		}
	}
	for i, a := range args {
		t = strings.ReplaceAll(t, "{"+strconv.Itoa(i)+"}", a)
	}
	return t
}

// plural picks "one|many" after a formatted number the way the properties' choice formats do:
// exactly 1 is singular, everything else (0, fractions, >1) plural.
func plural(l lang, key string, value float64, formatted string) string {
	t := msg(l, key, formatted)
	if i := strings.IndexByte(t, '|'); i >= 0 {
		sp := strings.LastIndexByte(t[:i], ' ')
		one, many := t[sp+1:i], t[i+1:]
		word := many
		if value == 1 {
			word = one
		}
		return t[:sp+1] + word
	}
	return t
}

// formatInt is MessageFormat's default number format: grouping separators (',' in English, '.'
// in German), so build #1234 reads "Build #1,234" as it does in Jenkins.
func formatInt(l lang, n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := ","
	if l == langDE {
		sep = "."
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatFloat(l lang, f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 32)
	if l == langDE {
		s = strings.ReplaceAll(s, ".", ",")
	}
	return s
}

// timeSpan is hudson.Util.getTimeSpanString: the biggest unit, plus the next one while the
// biggest is below 10, and tenths of seconds under 10 s.
func timeSpan(l lang, d time.Duration) string {
	ms := d.Milliseconds()
	const (
		second = 1000
		minute = 60 * second
		hour   = 60 * minute
		day    = 24 * hour
	)
	days, ms := ms/day, ms%day
	hours, ms := ms/hour, ms%hour
	minutes, ms := ms/minute, ms%minute
	seconds, millis := ms/second, ms%second
	unit := func(key string, n int64) string {
		return plural(l, key, float64(n), formatInt(l, n))
	}
	two := func(big int64, bigKey string, small int64, smallKey string) string {
		s := unit(bigKey, big)
		if big < 10 {
			s += " " + unit(smallKey, small)
		}
		return s
	}
	switch {
	case days > 0:
		return two(days, "Util.day", hours, "Util.hour")
	case hours > 0:
		return two(hours, "Util.hour", minutes, "Util.minute")
	case minutes > 0:
		return two(minutes, "Util.minute", seconds, "Util.second")
	case seconds >= 10:
		return unit("Util.second", seconds)
	case seconds >= 1:
		f := float64(seconds) + float64(millis/100)/10
		return plural(l, "Util.second", f, formatFloat(l, f))
	case millis >= 100:
		f := float64(millis/10) / 100
		return plural(l, "Util.second", f, formatFloat(l, f))
	default:
		return unit("Util.millisecond", millis)
	}
}

// parseAcceptLanguage picks the language Stapler would render with: the client's most preferred
// tag. Only German is translated here; any other language gets English (a real Jenkins would use
// its own translation where one exists).
func parseAcceptLanguage(h string) lang {
	type tag struct {
		name string
		q    float64
		pos  int
	}
	var tags []tag
	for i, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			tags = append(tags, tag{name, q, i})
		}
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].q > tags[j].q })
	if len(tags) > 0 && (tags[0].name == "de" || strings.HasPrefix(tags[0].name, "de-")) {
		return langDE
	}
	return langEN
}

// javaLess orders strings as Java's String.compareTo does (UTF-16 code units), which is how
// Jenkins sorts computers and how CompositeCauseOfBlockage's TreeMap orders its reasons.
func javaLess(a, b string) bool {
	// For valid UTF-8 without supplementary characters (no 4-byte sequences), UTF-16 code units
	// are the code points and UTF-8 byte order is code point order, so Go's comparison agrees;
	// sorting a thousand node names the slow way cost more than the rest of a request.
	if bmpUTF8(a) && bmpUTF8(b) {
		return a < b
	}
	return javaLessUTF16(a, b)
}

// javaLessUTF16 is String.compareTo spelled out: compare the UTF-16 code units.
func javaLessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

// bmpUTF8 reports whether s is valid UTF-8 holding only characters of the Basic Multilingual
// Plane.
func bmpUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			if !utf8.ValidString(s[i:]) {
				return false
			}
			for ; i < len(s); i++ {
				if s[i] >= 0xF0 {
					return false
				}
			}
			return true
		}
	}
	return true
}

// compositeWhy is CompositeCauseOfBlockage.getShortDescription: distinct reasons, sorted, at most
// five, the rest counted.
func compositeWhy(reasons []string) string {
	set := map[string]bool{}
	var uniq []string
	for _, r := range reasons {
		if !set[r] {
			set[r] = true
			uniq = append(uniq, r)
		}
	}
	sort.Slice(uniq, func(i, j int) bool { return javaLess(uniq[i], uniq[j]) })
	const maxReasons = 5
	if len(uniq) <= maxReasons {
		return strings.Join(uniq, "; ")
	}
	return strings.Join(uniq[:maxReasons], "; ") + fmt.Sprintf("; ... and %d more", len(uniq)-maxReasons)
}
