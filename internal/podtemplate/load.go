package podtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// templateSpec is one template as written; pointers tell "left out" (inherit or default) from a
// value.
type templateSpec struct {
	Name                  string                  `json:"name"`
	Labels                []string                `json:"labels"`
	InheritFrom           []string                `json:"inheritFrom"`
	Mode                  *Mode                   `json:"mode"`
	MaxAgents             *int                    `json:"maxAgents"`
	ConnectTimeout        *Duration               `json:"connectTimeout"`
	ActiveDeadlineSeconds *int64                  `json:"activeDeadlineSeconds"`
	PodRetention          *Retention              `json:"podRetention"`
	RetentionTimeout      *Duration               `json:"retentionTimeout"`
	Workspace             *Workspace              `json:"workspace"`
	Agent                 *agentSpecIn            `json:"agent"`
	Queue                 *string                 `json:"queue"`
	Pod                   *corev1.PodTemplateSpec `json:"pod"`
	Warm                  *warmSpecIn             `json:"warm"`
}

// agentSpecIn is AgentSpec with "left out" visible, so a child can inherit single agent fields.
type agentSpecIn struct {
	Image     *string `json:"image"`
	WebSocket *bool   `json:"webSocket"`
	WorkDir   *string `json:"workDir"`
}

// rawTemplate is a decoded template with what is needed to report errors against its source.
type rawTemplate struct {
	spec    templateSpec
	podJSON []byte // the pod exactly as written, for strategic merge
	file    string
	index   int        // position in its file's templates list
	node    *yaml.Node // the template's mapping node
}

func (r *rawTemplate) path(sub string) string {
	return joinPath(fmt.Sprintf("templates[%d]", r.index), sub)
}

func (r *rawTemplate) errorf(sub, format string, args ...any) *fieldError {
	return &fieldError{File: r.file, Line: locate(r.node, sub), Path: r.path(sub), Msg: fmt.Sprintf(format, args...)}
}

// Load reads templates from path: a file, or every *.yaml file in a directory (sorted by name;
// hidden entries such as a ConfigMap volume's ..data are skipped, the symlinks beside them
// followed). Templates are in file order, files in name order.
func Load(path string) (*Set, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with the deployment's options.
func LoadWith(path string, opts Options) (*Set, error) {
	files, err := templateFiles(path)
	if err != nil {
		return nil, err
	}
	var raws []*rawTemplate
	var errs []*fieldError
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read templates: %w", err)
		}
		r, e := decodeFile(f, data)
		raws = append(raws, r...)
		errs = append(errs, e...)
	}
	if len(raws) == 0 && len(errs) == 0 {
		return nil, noTemplates(path)
	}
	return build(raws, errs, opts)
}

// noTemplates refuses an empty set: a provisioner without templates starts no agent at all, and
// an emptied ConfigMap is far more likely a mistake than the intent, so a reload keeps the last
// good set instead.
func noTemplates(name string) error {
	return &fieldError{File: name, Line: 1, Msg: "no templates defined"}
}

// templateFiles lists the files Load reads.
func templateFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		full := filepath.Join(path, name)
		if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, full)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read templates: no *.yaml files in directory %s", path)
	}
	sort.Strings(files)
	return files, nil
}

// Parse reads templates from one YAML document; name is used in messages.
func Parse(name string, data []byte) (*Set, error) { return ParseWith(name, data, Options{}) }

// ParseWith is Parse with the deployment's options.
func ParseWith(name string, data []byte, opts Options) (*Set, error) {
	raws, errs := decodeFile(name, data)
	if len(raws) == 0 && len(errs) == 0 {
		return nil, noTemplates(name)
	}
	return build(raws, errs, opts)
}

// decodeFile decodes one file strictly. A structural error stops the decoding of the template it
// is in; other templates are still decoded so one run reports as much as it can.
func decodeFile(file string, data []byte) ([]*rawTemplate, []*fieldError) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []*fieldError{{File: file, Line: 1, Msg: "empty file: want a mapping with a templates list"}}
		}
		return nil, []*fieldError{{File: file, Line: yamlErrorLine(err), Msg: "invalid YAML: " + yamlErrorText(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, []*fieldError{{File: file, Line: extra.Line, Msg: "more than one YAML document; put all templates in one list"}}
	}
	d := &decoder{file: file}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		return nil, []*fieldError{d.errorf(root, "", "expected a mapping with a templates list, got %s", kindName(root))}
	}
	pairs, err := d.mappingPairs(root, "")
	if err != nil {
		return nil, []*fieldError{asFieldError(err)}
	}
	var list *yaml.Node
	for _, p := range pairs {
		if p[0].Value != "templates" {
			return nil, []*fieldError{{File: file, Line: p[0].Line, Path: p[0].Value, Msg: fmt.Sprintf("unknown field %q", p[0].Value)}}
		}
		list = resolve(p[1])
	}
	if list == nil || isNull(list) {
		return nil, []*fieldError{d.errorf(root, "templates", "required: the list of templates")}
	}
	if list.Kind != yaml.SequenceNode {
		return nil, []*fieldError{d.errorf(list, "templates", "expected a list, got %s", kindName(list))}
	}
	var raws []*rawTemplate
	var errs []*fieldError
	for i, item := range list.Content {
		item = resolve(item)
		r := &rawTemplate{file: file, index: i, node: item}
		path := fmt.Sprintf("templates[%d]", i)
		if err := d.decode(item, reflect.ValueOf(&r.spec).Elem(), path); err != nil {
			errs = append(errs, asFieldError(err))
			if d.steps > maxDecodeSteps {
				break // the rest of the file would fail the same way, slowly
			}
			continue
		}
		if pod := mappingValue(item, "pod"); pod != nil && !isNull(pod) {
			j, err := d.toJSONValue(pod, path+".pod")
			if err != nil {
				errs = append(errs, asFieldError(err))
				continue
			}
			if r.podJSON, err = json.Marshal(j); err != nil {
				errs = append(errs, d.errorf(pod, path+".pod", "%v", err))
				continue
			}
		}
		raws = append(raws, r)
	}
	return raws, errs
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if resolve(n.Content[i]).Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func asFieldError(err error) *fieldError {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe
	}
	return &fieldError{Msg: err.Error()}
}

// yamlErrorLine digs the line out of a yaml.v3 syntax error ("yaml: line 3: ...").
func yamlErrorLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 1
}

func yamlErrorText(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
		return rest
	}
	return msg
}

// Set is a validated, resolved list of templates in file order. It is never changed after build.
type Set struct {
	Templates []*Template
}

// Get returns the template called name.
func (s *Set) Get(name string) (*Template, bool) {
	for _, t := range s.Templates {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Select returns the template for a build asking for labelExpr: the first template in file order
// whose labels satisfy the expression. A build that names no label ("") goes only to a mode normal
// template, as Jenkins only gives unlabelled builds to normal nodes. An expression that does not
// parse is taken as one label name, as Jenkins.getLabel does.
func (s *Set) Select(labelExpr string) (*Template, bool) { return s.SelectWith(nil, labelExpr) }

// SelectWith is Select parsing labelExpr through cache (nil: no cache), so that a poll meeting one
// expression in many queued builds parses it once.
func (s *Set) SelectWith(cache *labelexpr.Cache, labelExpr string) (*Template, bool) {
	if strings.TrimSpace(labelExpr) == "" {
		for _, t := range s.Templates {
			if t.Mode == ModeNormal {
				return t, true
			}
		}
		return nil, false
	}
	match := func(t *Template) bool { return containsString(t.Labels, labelExpr) }
	parse := labelexpr.Parse
	if cache != nil {
		parse = cache.Parse
	}
	e, err := parse(labelExpr)
	switch {
	case err == nil:
		match = func(t *Template) bool { return labelexpr.Matches(e, t.Labels) }
	case errors.Is(err, labelexpr.ErrTooLong), errors.Is(err, labelexpr.ErrTooDeep):
		// No template label is that long (MaxLabelLength), nor is any label that deep.
		return nil, false
	}
	for _, t := range s.Templates {
		if t.Selectable() && match(t) {
			return t, true
		}
	}
	return nil, false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// build resolves inheritance, applies defaults and validates. decodeErrs from the files are
// reported together with what build finds.
func build(raws []*rawTemplate, decodeErrs []*fieldError, opts Options) (*Set, error) {
	errs := append([]*fieldError(nil), decodeErrs...)
	if len(raws) > MaxTemplates {
		r := raws[MaxTemplates]
		return nil, joinFieldErrors(append(errs, &fieldError{File: r.file, Line: r.node.Line, Path: r.path(""),
			Msg: fmt.Sprintf("%d templates, more than the %d one provisioner loads", len(raws), MaxTemplates)}))
	}
	byName := map[string]*rawTemplate{}
	for _, r := range raws {
		name := r.spec.Name
		switch {
		case name == "":
			errs = append(errs, r.errorf("name", "required"))
			continue
		case len(name) > maxTemplateNameLength:
			errs = append(errs, r.errorf("name", "%q is %d characters, at most %d allowed (agent names are <name>-<5 chars>, a DNS-1123 label of at most 63)", name, len(name), maxTemplateNameLength))
		default:
			for _, msg := range validation.IsDNS1123Label(name) {
				errs = append(errs, r.errorf("name", "%q is not a valid name: %s", name, msg))
			}
		}
		if prev, dup := byName[name]; dup {
			errs = append(errs, r.errorf("name", "duplicate template name %q (first defined at %s:%d)", name, prev.file, locate(prev.node, "name")))
			continue
		}
		byName[name] = r
	}

	b := &builder{byName: byName, resolved: map[string]*resolvedTemplate{}, failed: map[string]*fieldError{}, active: map[string]bool{}, depth: map[string]int{}}
	var set Set
	for _, r := range raws {
		if byName[r.spec.Name] != r {
			continue
		}
		rt, err := b.resolve(r, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, tErrs := finish(r, rt, opts)
		errs = append(errs, tErrs...)
		if t != nil {
			set.Templates = append(set.Templates, t)
		}
	}
	if len(errs) > 0 {
		return nil, joinFieldErrors(errs)
	}
	return &set, nil
}

// joinFieldErrors makes one error, one problem per line, sorted by file and line.
func joinFieldErrors(errs []*fieldError) error {
	sortErrors(errs)
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// resolvedTemplate is a template's fields after inheritance, before defaults.
type resolvedTemplate struct {
	spec    templateSpec // inherited fields filled in; Labels, Mode and Name are the template's own
	podJSON []byte       // merged pod
}

type builder struct {
	byName   map[string]*rawTemplate
	resolved map[string]*resolvedTemplate
	failed   map[string]*fieldError
	active   map[string]bool // being resolved now: meeting one again is a cycle
	depth    map[string]int  // of each resolved template: the length of its longest parent chain
	work     int64           // merge cost charged so far (maxMergeWork)
}

// resolve merges r's parents, in inheritFrom order, under r. chain is the inheritance path that led
// here, for the cycle message.
func (b *builder) resolve(r *rawTemplate, chain []string) (*resolvedTemplate, *fieldError) {
	name := r.spec.Name
	if rt, ok := b.resolved[name]; ok {
		return rt, nil
	}
	if err, ok := b.failed[name]; ok {
		return nil, err
	}
	chain = append(chain, name)
	if b.active[name] {
		return nil, r.errorf("inheritFrom", "inheritance cycle: %s", strings.Join(chain, " -> "))
	}
	if len(chain) > MaxInheritanceDepth+1 {
		return nil, r.errorf("inheritFrom", "inheritance deeper than %d: %s", MaxInheritanceDepth, strings.Join(chain, " -> "))
	}
	b.active[name] = true
	defer delete(b.active, name)
	rt, err := b.merge(r, chain)
	if err != nil {
		b.failed[name] = err
		return nil, err
	}
	b.resolved[name] = rt
	return rt, nil
}

// merge does resolve's work for a template not resolved yet.
func (b *builder) merge(r *rawTemplate, chain []string) (*resolvedTemplate, *fieldError) {
	name := r.spec.Name

	if len(r.spec.InheritFrom) > MaxParents {
		return nil, r.errorf("inheritFrom", "%d parents, more than the %d a template may name", len(r.spec.InheritFrom), MaxParents)
	}
	var acc *resolvedTemplate
	depth := 0
	defer func() { b.depth[name] = depth }()
	for i, parentName := range r.spec.InheritFrom {
		sub := fmt.Sprintf("inheritFrom[%d]", i)
		if parentName == name {
			return nil, r.errorf(sub, "a template cannot inherit from itself")
		}
		p, ok := b.byName[parentName]
		if !ok {
			return nil, r.errorf(sub, "unknown template %q", parentName)
		}
		prt, err := b.resolve(p, chain)
		if err == nil && b.depth[parentName]+1 > depth {
			depth = b.depth[parentName] + 1
			if depth > MaxInheritanceDepth {
				err = r.errorf(sub, "inheritance deeper than %d through %q", MaxInheritanceDepth, parentName)
				return nil, err
			}
		}
		if err != nil {
			if strings.Contains(err.Msg, "inheritance cycle") || strings.Contains(err.Msg, "inheritance deeper than") {
				return nil, r.errorf(sub, "%s", err.Msg)
			}
			return nil, r.errorf(sub, "parent %q is invalid (see its errors)", parentName)
		}
		if acc == nil {
			acc = &resolvedTemplate{spec: prt.spec, podJSON: prt.podJSON}
			continue
		}
		if err := b.charge(r, sub, acc.podJSON, prt.podJSON); err != nil {
			return nil, err
		}
		merged, mergeErr := mergeOver(acc, &prt.spec, prt.podJSON)
		if mergeErr != nil {
			return nil, r.errorf(sub, "merging parent %q: %v", parentName, mergeErr)
		}
		acc = merged
	}
	own := &resolvedTemplate{spec: r.spec, podJSON: r.podJSON}
	if acc != nil {
		if err := b.charge(r, "inheritFrom", acc.podJSON, r.podJSON); err != nil {
			return nil, err
		}
		merged, err := mergeOver(acc, &r.spec, r.podJSON)
		if err != nil {
			return nil, r.errorf("pod", "merging with parents: %v", err)
		}
		own = merged
	}
	// What a template serves is its own business, never inherited: a child inheriting its parent's
	// labels would compete with it for the same builds.
	own.spec.Name, own.spec.Labels, own.spec.Mode, own.spec.InheritFrom = r.spec.Name, r.spec.Labels, r.spec.Mode, r.spec.InheritFrom
	return own, nil
}

// charge counts one merge's cost against maxMergeWork before it runs: the square of the JSON
// objects in both pods, as strategic merge compares list elements pairwise. Diamonds of parents
// with large pods could otherwise make resolving a few hundred templates take many minutes.
func (b *builder) charge(r *rawTemplate, sub string, base, child []byte) *fieldError {
	objects := int64(bytes.Count(base, []byte("{")) + bytes.Count(child, []byte("{")))
	b.work += objects * objects
	if b.work > maxMergeWork {
		return r.errorf(sub, "resolving inheritance takes too much work (pods of %d objects merged; more than %d object pairs over the file); use fewer or smaller parents", objects, maxMergeWork)
	}
	return nil
}

// mergeOver lays child (spec fields and pod) over base: fields the child sets win; the pods merge
// by strategic merge patch with the pod schema, so lists with a merge key (containers, env,
// volumes, volumeMounts, ports...) merge by name as kubectl apply merges them.
func mergeOver(base *resolvedTemplate, child *templateSpec, childPod []byte) (*resolvedTemplate, error) {
	out := &resolvedTemplate{spec: base.spec, podJSON: base.podJSON}
	s := &out.spec
	if child.MaxAgents != nil {
		s.MaxAgents = child.MaxAgents
	}
	if child.ConnectTimeout != nil {
		s.ConnectTimeout = child.ConnectTimeout
	}
	if child.ActiveDeadlineSeconds != nil {
		s.ActiveDeadlineSeconds = child.ActiveDeadlineSeconds
	}
	if child.PodRetention != nil {
		s.PodRetention = child.PodRetention
	}
	if child.RetentionTimeout != nil {
		s.RetentionTimeout = child.RetentionTimeout
	}
	if child.Workspace != nil {
		s.Workspace = child.Workspace
	}
	if child.Warm != nil {
		s.Warm = child.Warm
	}
	if child.Queue != nil {
		s.Queue = child.Queue
	}
	if child.Agent != nil {
		a := agentSpecIn{}
		if s.Agent != nil {
			a = *s.Agent
		}
		if child.Agent.Image != nil {
			a.Image = child.Agent.Image
		}
		if child.Agent.WebSocket != nil {
			a.WebSocket = child.Agent.WebSocket
		}
		if child.Agent.WorkDir != nil {
			a.WorkDir = child.Agent.WorkDir
		}
		s.Agent = &a
	}
	switch {
	case len(childPod) == 0:
	case len(base.podJSON) == 0:
		out.podJSON = childPod
	default:
		merged, err := strategicpatch.StrategicMergePatch(base.podJSON, childPod, corev1.PodTemplateSpec{})
		if err != nil {
			return nil, err
		}
		out.podJSON = merged
	}
	return out, nil
}
