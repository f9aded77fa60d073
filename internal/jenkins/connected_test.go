package jenkins

import (
	"context"
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
