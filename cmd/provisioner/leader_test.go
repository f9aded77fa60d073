package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A leader whose controller gives up (Jenkins refuses its token) returns that error and gives the
// Lease up at once, so a standby with a good token leads without waiting for it to expire.
func TestElectAndLeadGivesUpTheLeaseWhenTheControllerStops(t *testing.T) {
	kube := fake.NewClientset()
	cfg := &runConfig{LeaderLease: "provisioner", LeaseDuration: 15 * time.Second}
	refused := errors.New("jenkins refuses the token")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	led := false
	err := electAndLead(ctx, cfg, "ci", kube, zaptest.NewLogger(t), func(context.Context) error {
		led = true
		return refused
	})
	if !led {
		t.Fatal("never led")
	}
	if !errors.Is(err, refused) {
		t.Errorf("electAndLead = %v, want the controller's error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("electAndLead returned only when its context ended")
	}
	lease, err := kube.CoordinationV1().Leases("ci").Get(context.Background(), "provisioner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease still held by %q", *h)
	}
}
