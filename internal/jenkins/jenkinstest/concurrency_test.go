package jenkinstest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs pollers, node churn, agents and builds at once; run with -race. Every
// scheduled build must end up run on an agent whose labels fit.
func TestConcurrentUse(t *testing.T) {
	s := newTestServer(t, Options{KeepAlive: 10 * time.Millisecond})
	s.CreateFreestyleJob("fs", "linux", 20*time.Millisecond)
	s.CreatePipelineJob("pl", "linux", 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, s, "admin", "admin-token")
			for ctx.Err() == nil {
				c.get("queue/api/json?tree=items[id,why,stuck]")
				c.get("computer/api/json?depth=1")
				c.get("api/json")
				_ = s.Nodes()
				_ = s.Builds()
				_ = s.Stats()
			}
		}()
	}
	c := newClient(t, s, "admin", "admin-token")
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("a%d", i)
		createNode(t, c, name, "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
		connect(t, s, name)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.Schedule("pl"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Schedule("fs"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "all builds to finish", func() bool {
		b := s.Builds()
		if len(b) == 0 {
			return false
		}
		for _, r := range b {
			if !r.Done {
				return false
			}
		}
		s.mu.Lock()
		empty := len(s.items) == 0
		s.mu.Unlock()
		return empty
	})
	// Churn: delete a connected node while pollers run.
	c.post("computer/a0/doDelete", nil).mustStatus(t, http.StatusFound)
	cancel()
	wg.Wait()
	for _, b := range s.Builds() {
		if b.Result != "SUCCESS" || b.Node == "" {
			t.Errorf("build %s #%d: result %q on %q", b.Job, b.Number, b.Result, b.Node)
		}
	}
}
