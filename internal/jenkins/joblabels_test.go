package jenkins

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestJobLabelCacheEvicts: the cache holds at most JobLabelCacheSize jobs, dropping the least
// recently used, so a queue that names ever new jobs cannot grow it without end. Before, every job
// path ever looked up stayed in a map for the life of the process.
func TestJobLabelCacheEvicts(t *testing.T) {
	var a attempts
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.add(r)
		fmt.Fprint(w, `{"_class":"hudson.model.FreeStyleProject","labelExpression":"linux"}`)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL + "/")
	cfg.JobLabelCacheSize = 3
	c := newClient(t, cfg)
	ctx := context.Background()
	look := func(job string) {
		t.Helper()
		if _, err := c.JobLabelExpression(ctx, srv.URL+"/job/"+job+"/"); err != nil {
			t.Fatal(err)
		}
	}
	look("hot")
	for i := range 1000 {
		look(fmt.Sprintf("j%d", i))
		look("hot") // used all along: never evicted
	}
	if n := c.jobLbls.len(); n != 3 {
		t.Errorf("cache holds %d jobs, want the size 3", n)
	}
	if n := a.get("/job/hot/api/json"); n != 1 {
		t.Errorf("the job in use was read %d times, want 1", n)
	}
	look("j0") // evicted long ago: read again
	if n := a.get("/job/j0/api/json"); n != 2 {
		t.Errorf("an evicted job was read %d times, want 2", n)
	}
}
