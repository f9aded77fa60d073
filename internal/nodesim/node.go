package nodesim

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The simulated Node: registered with its labels and capacity, and its Lease renewed as the
// kubelet's node heartbeat does.

func (s *Simulator) nodeLabels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":           s.cfg.NodeName,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": "nodesim",
	}
}

// registerNode creates (or takes over) the Node object and reports it Ready, as a kubelet does when it
// starts; the lifecycle controller and `kubectl get nodes` then see a believable node.
func (s *Simulator) registerNode(ctx context.Context) (*corev1.Node, error) {
	now := metav1.Now()
	status := corev1.NodeStatus{
		Capacity:    s.cfg.Capacity.DeepCopy(),
		Allocatable: s.cfg.Capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: s.hostIP},
			{Type: corev1.NodeHostName, Address: s.cfg.NodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: s.cfg.NodeName, SystemUUID: s.cfg.NodeName, BootID: s.cfg.NodeName,
			KernelVersion: "nodesim", OSImage: "nodesim (no containers run)", ContainerRuntimeVersion: "nodesim://1",
			KubeletVersion: "v1.37.2-nodesim", OperatingSystem: "linux", Architecture: "amd64",
		},
	}
	for i := range status.Conditions {
		status.Conditions[i].LastHeartbeatTime = now
		status.Conditions[i].LastTransitionTime = now
	}
	nodes := s.cfg.Client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.cfg.NodeName, Labels: s.nodeLabels()},
		Status:     status,
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another simulator (or an earlier run) registered the same node: take it over. Two
		// simulators starting together may race on the status update, hence the retry.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			current, err := nodes.Get(ctx, s.cfg.NodeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			current.Status = status
			node, err = nodes.UpdateStatus(ctx, current, metav1.UpdateOptions{})
			return err
		})
	} else if err == nil {
		node.Status = status
		node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("nodesim: register node %s: %w", s.cfg.NodeName, err)
	}
	s.log.Info("node registered", zap.String("internalIP", s.hostIP))
	return node, nil
}

// renewLease keeps the node's heartbeat Lease fresh, so a kube-controller-manager running beside the
// simulator does not mark the node NotReady and evict its pods.
func (s *Simulator) renewLease(ctx context.Context, node *corev1.Node) {
	leases := s.cfg.Client.CoordinationV1().Leases(nodeLeaseNS)
	duration := int32(leaseDuration / time.Second)
	holder := s.cfg.NodeName
	renew := func() error {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, s.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: s.cfg.NodeName, Namespace: nodeLeaseNS,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
				},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, RenewTime: &now},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &holder, &duration, &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	}
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		if err := renew(); err != nil && ctx.Err() == nil {
			s.log.Warn("node lease not renewed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
