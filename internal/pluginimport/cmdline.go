package pluginimport

import "strings"

// splitCommandLine splits a command line the way the plugin does (PodTemplateUtils.splitCommandLine,
// which calls Ant's Commandline.translateCommandline): words separated by spaces, single or double
// quotes group words and are removed, there are no escapes. ok is false for an unbalanced quote,
// where Ant throws.
func splitCommandLine(s string) (args []string, ok bool) {
	const (
		normal = iota
		inQuote
		inDoubleQuote
	)
	state := normal
	var cur strings.Builder
	lastTokenHasBeenQuoted := false
	for _, r := range s {
		switch state {
		case inQuote:
			if r == '\'' {
				lastTokenHasBeenQuoted = true
				state = normal
			} else {
				cur.WriteRune(r)
			}
		case inDoubleQuote:
			if r == '"' {
				lastTokenHasBeenQuoted = true
				state = normal
			} else {
				cur.WriteRune(r)
			}
		default:
			switch r {
			case '\'':
				state = inQuote
			case '"':
				state = inDoubleQuote
			case ' ':
				// Ant's tokenizer splits on space only ("\"' " delimiters), as here.
				if lastTokenHasBeenQuoted || cur.Len() > 0 {
					args = append(args, cur.String())
					cur.Reset()
				}
				lastTokenHasBeenQuoted = false
			default:
				cur.WriteRune(r)
			}
		}
	}
	if lastTokenHasBeenQuoted || cur.Len() > 0 {
		args = append(args, cur.String())
	}
	if state != normal {
		return nil, false
	}
	return args, true
}
