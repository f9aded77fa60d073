package pluginimport

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

func metaOf(labels, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Labels: labels, Annotations: annotations}
}

// mergePods lays over on base with Kubernetes' strategic merge patch and the Pod schema:
// containers, volumes, env and mounts merge by name, maps key by key.
func mergePods(base, over *corev1.PodTemplateSpec) (*corev1.PodTemplateSpec, error) {
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	o, err := json.Marshal(over)
	if err != nil {
		return nil, err
	}
	m, err := strategicpatch.StrategicMergePatch(b, o, corev1.PodTemplateSpec{})
	if err != nil {
		return nil, err
	}
	var out corev1.PodTemplateSpec
	if err := json.Unmarshal(m, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
