package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Kueue's LocalQueue versions, newest first: v1beta2 since Kueue v0.15, v1beta1 before. A pod
// naming a LocalQueue that does not exist is not refused by Kueue's webhook: it stays gated
// forever, so `templates check` looks the queues up. The objects are read as JSON through the
// REST client: the module does not import Kueue's API types (see internal/testenv/kueue_queues.go).
var localQueueVersions = []string{"v1beta2", "v1beta1"}

// kueueQueuesOf lists the LocalQueues the templates' pods join, sorted, each once.
func kueueQueuesOf(set *podtemplate.Set, f *templatesFlags) []string {
	var queues []string
	for _, t := range set.Templates {
		if !t.Selectable() {
			continue
		}
		pod, _, err := podtemplate.Render(t, identityFor(t, f, "dry-run-secret"))
		if err != nil {
			continue // the dry run reports it
		}
		if q := pod.Labels[podtemplate.LabelKueueQueue]; q != "" && !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	slices.Sort(queues)
	return queues
}

// checkKueueQueues says, per LocalQueue the pods join, whether it exists in the namespace and which
// ClusterQueue it feeds. A missing LocalQueue is an error (its pods would wait forever); Kueue not
// installed, or no permission to read LocalQueues, is a warning: the check cannot tell.
func checkKueueQueues(ctx context.Context, client kubernetes.Interface, namespace string, queues []string, stdout, stderr io.Writer) (failed int) {
	if len(queues) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	version, err := servedLocalQueueVersion(client)
	if err != nil {
		fmt.Fprintf(stdout, "warning: templates put pods in Kueue LocalQueues %v, but %v: not checked\n", queues, err)
		return 0
	}
	for _, q := range queues {
		body, err := client.Discovery().RESTClient().Get().
			AbsPath("/apis/kueue.x-k8s.io", version, "namespaces", namespace, "localqueues", q).DoRaw(ctx)
		switch {
		case apierrors.IsNotFound(err):
			failed++
			fmt.Fprintf(stderr, "error: Kueue LocalQueue %s does not exist in namespace %s: pods joining it would wait for admission forever\n", q, namespace)
		case apierrors.IsForbidden(err):
			fmt.Fprintf(stdout, "warning: Kueue LocalQueue %s in namespace %s not checked: no permission to get localqueues.kueue.x-k8s.io\n", q, namespace)
		case err != nil:
			fmt.Fprintf(stdout, "warning: Kueue LocalQueue %s in namespace %s not checked: %s\n", q, namespace, apiMessage(err))
		default:
			var lq struct {
				Spec struct {
					ClusterQueue string `json:"clusterQueue"`
				} `json:"spec"`
			}
			_ = json.Unmarshal(body, &lq)
			fmt.Fprintf(stdout, "Kueue LocalQueue %s in namespace %s exists, feeding ClusterQueue %s\n", q, namespace, lq.Spec.ClusterQueue)
		}
	}
	return failed
}

// servedLocalQueueVersion finds the newest LocalQueue version the apiserver serves.
func servedLocalQueueVersion(client kubernetes.Interface) (string, error) {
	var last error
	for _, v := range localQueueVersions {
		list, err := client.Discovery().ServerResourcesForGroupVersion("kueue.x-k8s.io/" + v)
		if err != nil {
			last = err
			continue
		}
		for _, r := range list.APIResources {
			if r.Name == "localqueues" {
				return v, nil
			}
		}
	}
	var status apierrors.APIStatus
	if errors.As(last, &status) && status.Status().Code == http.StatusNotFound || apierrors.IsNotFound(last) {
		return "", errors.New("the cluster has no Kueue (kueue.x-k8s.io LocalQueues are not served)")
	}
	if apierrors.IsForbidden(last) {
		return "", errors.New("no permission to discover kueue.x-k8s.io")
	}
	return "", fmt.Errorf("discovering kueue.x-k8s.io: %v", last)
}
