package pluginimport

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

const maxNameLength = 57 // podtemplate: "<name>-<5 chars>" must be a DNS-1123 label

// finish names the templates, resolves inheritFrom to the new names and folds the clouds' caps in.
func (im *importer) finish() {
	taken := map[string]bool{}
	byCloud := map[*cloudCtx]map[string]*outTemplate{}
	global := map[string]*outTemplate{}
	for _, t := range im.templates {
		subject := t.subject()
		base := dnsName(t.origName)
		if base == "" {
			base = dnsName(fmt.Sprintf("%s-%d", t.cloud.name, t.position))
			if base == "" {
				base = fmt.Sprintf("template-%d", t.position)
			}
			im.changef(t.file, t.line, subject, "name", "no name: named %s after its cloud and position", base)
		}
		name := base
		for i := 2; taken[name]; i++ {
			suffix := "-" + strconv.Itoa(i)
			name = strings.TrimRight(truncate(base, maxNameLength-len(suffix)), "-") + suffix
		}
		if t.origName != "" && name != t.origName {
			im.changef(t.file, t.line, subject, "name", "named %s (a template name here is a DNS-1123 label of at most %d characters, unique across all files)", name, maxNameLength)
		}
		taken[name] = true
		t.name = name
		if byCloud[t.cloud] == nil {
			byCloud[t.cloud] = map[string]*outTemplate{}
		}
		if t.origName != "" {
			if _, dup := byCloud[t.cloud][t.origName]; !dup {
				byCloud[t.cloud][t.origName] = t
			}
			if _, dup := global[t.origName]; !dup {
				global[t.origName] = t
			}
		}
	}
	total := 0
	capped := map[*cloudCtx]bool{}
	for _, t := range im.templates {
		subject := t.subject()
		var parents []string
		var parentTs []*outTemplate
		for _, p := range t.inheritFrom {
			// PodTemplateUtils.getTemplateByName looks in the template's own cloud.
			pt := byCloud[t.cloud][p]
			if pt == nil {
				pt = global[p]
			}
			if pt == nil || pt == t {
				im.dropf(t.file, t.line, subject, "inheritFrom "+p, "no template %q to inherit from; not carried over", p)
				continue
			}
			if !slices.Contains(parents, pt.name) {
				parents = append(parents, pt.name)
				parentTs = append(parentTs, pt)
			}
		}
		t.inheritFrom = parents
		if t.yamlPod != nil && len(parentTs) > 0 {
			strategy := t.mergeStrategy
			if t.inheritMerge {
				strategy = parentTs[len(parentTs)-1].mergeStrategy
			}
			parentYAML := false
			for _, p := range parentTs {
				parentYAML = parentYAML || p.yamlPod != nil
			}
			if strategy == "override" && parentYAML {
				im.changef(t.file, t.yamlLine, subject, "yamlMergeStrategy", "override: with the plugin this yaml replaces the parents' yaml; here every pod merges with its parents' (strategic merge patch): check `provisioner templates render`, and write in this yaml what must differ")
			}
		}
		if c := t.cloud.containerCap; c > 0 {
			if !capped[t.cloud] {
				capped[t.cloud] = true
				total += c
			}
			if t.maxAgents == 0 || t.maxAgents > c {
				t.maxAgents = c
			}
		}
		if t.webSocket == nil {
			t.webSocket = t.cloud.webSocket
		}
	}
	if total > 0 {
		first := im.templates[0]
		for _, t := range im.templates {
			if t.cloud.containerCap > 0 {
				first = t
				break
			}
		}
		src := fmt.Sprintf("%s:%d", first.cloud.file, first.cloud.capLine)
		im.settings = append(im.settings, SettingLine{Name: "PROVISIONER_MAX_AGENTS", Value: strconv.Itoa(total), Source: src})
	}
}

func (t *outTemplate) subject() string {
	if t.origName != "" {
		return "template " + t.origName
	}
	return fmt.Sprintf("template %d of cloud %s", t.position, t.cloud.name)
}

// dnsName makes s a DNS-1123 label: lower case, runs of other characters become one '-'.
func dnsName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(truncate(strings.Trim(b.String(), "-"), maxNameLength), "-")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
