package jenkins

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
)

// Connected tells a marked agent whose channel is up from a marked agent without one (Jenkins
// restarted, the connection dropped): `offline` is true for both. It comes from
// absoluteRemotePath, which Jenkins exports only while connected and only to a user with
// Agent/Connect; an online agent is connected whoever asks.
func TestComputersConnected(t *testing.T) {
	srv := newEmulator(t)
	srv.AddUser("reader", "1100aa11bb22cc33dd44ee55ff66778899", jenkinstest.OverallRead)
	admin, _ := emuClient(t, srv)
	reader := newClient(t, Config{URL: srv.URL(), User: "reader", Token: "1100aa11bb22cc33dd44ee55ff66778899", Timeout: 2 * time.Second})
	ctx := context.Background()
	const name = "agent-1"
	if err := admin.CreateNode(ctx, NodeSpec{Name: name, Description: ourMark + " test", Labels: []string{"linux"}}); err != nil {
		t.Fatal(err)
	}
	secret, err := admin.NodeSecret(ctx, name)
	if err != nil {
		t.Fatal(err)
	}

	type view struct{ Offline, TemporarilyOffline, Connected bool }
	read := func(c *Client) view {
		t.Helper()
		cs, err := c.Computers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, ok := computerByName(cs, name)
		if !ok {
			t.Fatalf("%s not in the computer list", name)
		}
		return view{a.Offline, a.TemporarilyOffline, a.Connected}
	}
	check := func(step string, wantAdmin, wantReader view) {
		t.Helper()
		if diff := cmp.Diff(wantAdmin, read(admin)); diff != "" {
			t.Errorf("%s, as the provisioner (Agent/Connect) (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(wantReader, read(reader)); diff != "" {
			t.Errorf("%s, as a user without Agent/Connect (-want +got):\n%s", step, diff)
		}
	}

	never := view{Offline: true}
	check("never connected", never, never)

	sess, err := jenkinstest.ConnectAgent(ctx, srv.URL(), name, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	online := view{Connected: true}
	check("connected", online, online)

	if err := admin.SetTemporarilyOffline(ctx, name, "marked"); err != nil {
		t.Fatal(err)
	}
	check("connected and marked", view{Offline: true, TemporarilyOffline: true, Connected: true},
		view{Offline: true, TemporarilyOffline: true})

	if !srv.DisconnectAgent(name) {
		t.Fatal("DisconnectAgent: agent was not connected")
	}
	dropped := view{Offline: true, TemporarilyOffline: true}
	check("marked, connection dropped", dropped, dropped)
}

// SetOnline clears a mark and leaves an online node online (toggleOffline flips, so it must not be
// sent to a node that is not temporarily offline).
func TestSetOnline(t *testing.T) {
	srv := newEmulator(t)
	c, ct := emuClient(t, srv)
	ctx := context.Background()
	const name = "agent-1"
	if err := c.CreateNode(ctx, NodeSpec{Name: name, Description: ourMark + " test", Labels: []string{"linux"}}); err != nil {
		t.Fatal(err)
	}
	secret, err := c.NodeSecret(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := jenkinstest.ConnectAgent(ctx, srv.URL(), name, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	state := func() (bool, bool) {
		t.Helper()
		comp, err := c.Computer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return comp.TemporarilyOffline, comp.Offline
	}
	for _, step := range []struct {
		name    string
		marked  bool
		wantReq int64 // requests SetOnline sends
	}{
		{"marked node", true, 2},
		{"online node", false, 1},
		{"online node again", false, 1},
	} {
		if step.marked {
			if err := c.SetTemporarilyOffline(ctx, name, "busy"); err != nil {
				t.Fatal(err)
			}
		}
		before := ct.n.Load()
		if err := c.SetOnline(ctx, name); err != nil {
			t.Fatalf("%s: SetOnline: %v", step.name, err)
		}
		if got := ct.n.Load() - before; got != step.wantReq {
			t.Errorf("%s: SetOnline sent %d requests, want %d", step.name, got, step.wantReq)
		}
		if temp, off := state(); temp || off {
			t.Errorf("%s: after SetOnline temporarilyOffline=%v offline=%v, want online", step.name, temp, off)
		}
	}
	if err := c.SetOnline(ctx, "no-such-node"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetOnline of a missing node: %v, want ErrNotFound", err)
	}
}
