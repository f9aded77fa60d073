package podtemplate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Kueue's own labels (sigs.k8s.io/kueue pkg/controller/constants). A pod carrying the queue label
// is gated by Kueue's webhook until its LocalQueue's ClusterQueue has quota for it; the priority
// class label sets its Workload's WorkloadPriorityClass. Both are Kueue's conventions, so a
// template writes them in pod.metadata.labels as for any other pod and they are honoured as
// written; `queue:` and Identity.Queue only fill the queue label where the template leaves it out.
const (
	LabelKueueQueue         = "kueue.x-k8s.io/queue-name"
	LabelKueuePriorityClass = "kueue.x-k8s.io/priority-class"
)

// finishQueue validates the template's `queue:` and sets t.Queue. The pod's labels (t.Pod, merged
// with the parents') must already be in t.
func finishQueue(r *rawTemplate, queue *string, t *Template) []*fieldError {
	var errs []*fieldError
	if queue != nil {
		for _, msg := range queueNameProblems(*queue) {
			errs = append(errs, r.errorf("queue", "invalid LocalQueue name %q: %s", *queue, msg))
		}
		t.Queue = *queue
	}
	written, ok := t.Pod.Labels[LabelKueueQueue]
	if !ok {
		return errs
	}
	// An empty value is a template's way to keep its pods out of the installation's queue
	// (PROVISIONER_KUEUE_QUEUE): Kueue leaves pods with no queue name alone.
	if written != "" {
		for _, msg := range queueNameProblems(written) {
			errs = append(errs, r.errorf("pod.metadata.labels."+LabelKueueQueue, "invalid LocalQueue name %q: %s", written, msg))
		}
	}
	if queue != nil && *queue != written {
		errs = append(errs, r.errorf("queue", "%q, but pod.metadata.labels sets %s to %q: set one of them", *queue, LabelKueueQueue, written))
	}
	return errs
}

// queueNameProblems checks a LocalQueue name as Kueue's webhook checks the queue label
// (pkg/controller/jobframework/validation.go: a DNS-1123 subdomain), and as a label value.
func queueNameProblems(name string) []string {
	if name == "" {
		return []string{"must not be empty"}
	}
	return append(validation.IsDNS1123Subdomain(name), validation.IsValidLabelValue(name)...)
}

// setQueueLabel fills the Kueue queue label of a rendered pod: the template's own label wins, then
// its `queue:`, then the installation's default (Identity.Queue, PROVISIONER_KUEUE_QUEUE). With
// none of them the pod has no queue label and Kueue does not manage it.
func setQueueLabel(pod *corev1.Pod, t *Template, id Identity) error {
	if _, written := pod.Labels[LabelKueueQueue]; written {
		return nil
	}
	queue := t.Queue
	if queue == "" {
		queue = id.Queue
		if queue != "" {
			if msgs := queueNameProblems(queue); len(msgs) > 0 {
				return fmt.Errorf("identity: Kueue queue %q: %s", queue, msgs[0])
			}
		}
	}
	if queue != "" {
		pod.Labels[LabelKueueQueue] = queue
	}
	return nil
}
