package podtemplate

// Options are the settings of a load that come from the provisioner's deployment rather than from
// the template file.
type Options struct {
	// ProvisionerServiceAccount is the name of the service account the provisioner itself runs as
	// (`provisioner run` reads it from PROVISIONER_SERVICE_ACCOUNT, which the Deployment fills from
	// the downward API's spec.serviceAccountName). A template naming it as its pod's
	// serviceAccountName is refused: every build on such an agent could act with the provisioner's
	// rights (create and delete pods and Secrets). Empty: no such check.
	ProvisionerServiceAccount string
}

// Bounds on a template file, so that a pathological one fails fast with a message instead of
// stalling start-up past the liveness probe. Real files have a handful of templates, a parent or
// two each, and a few labels.
const (
	// MaxTemplates is the most templates one load accepts (over all files).
	MaxTemplates = 500
	// MaxInheritanceDepth is the longest parent chain (a template inheriting from one that inherits
	// from another is depth 2).
	MaxInheritanceDepth = 10
	// MaxParents is the most templates one inheritFrom list names.
	MaxParents = 10
	// MaxLabels is the most labels one template serves.
	MaxLabels = 100
	// MaxLabelLength is the longest label, in bytes.
	MaxLabelLength = 256
	// maxMergeWork bounds the work of resolving inheritance. A strategic merge compares list
	// elements pairwise by merge key, so its cost grows with the square of the JSON objects in the
	// two pods (measured: 4 400 objects, 1.7 s; 8 000, 9 s). Each merge is charged that square
	// before it runs, and a load stops when the total would pass this bound: about 2 s of merging
	// on a slow core, where a hundred templates of 100-object pods with three parents each cost 3M.
	maxMergeWork = 20_000_000
)
