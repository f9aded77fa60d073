package jenkinstest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The jobs' handlers: a job, a run, build and buildWithParameters, and /label/X/api
// (hudson.model.Job, hudson.model.AbstractProject, hudson.model.labels.LabelAtom).

func (s *Server) handleJob(q *request) {
	s.mu.Lock()
	j := s.jobs[q.segs[1]]
	s.mu.Unlock()
	if j == nil || !q.pr.user.has(JobRead) {
		notFound(q) // Jenkins hides jobs a user cannot read
		return
	}
	s.writeBean(q, func() *bean { return s.jobBean(j, q.lang) })
}

func (s *Server) handleRun(q *request) {
	num, err := strconv.Atoi(q.segs[2])
	s.mu.Lock()
	var r *run
	if j := s.jobs[q.segs[1]]; j != nil && err == nil {
		for _, x := range j.runs {
			if x.number == num {
				r = x
			}
		}
	}
	s.mu.Unlock()
	if r == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	s.writeBean(q, func() *bean { return s.runBean(r, q.lang) })
}

// handleBuild is ParameterizedJobMixIn.doBuild: 201 with the queue item's URL in Location.
func (s *Server) handleBuild(q *request) {
	s.mu.Lock()
	j := s.jobs[q.segs[1]]
	s.mu.Unlock()
	if j == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	if !s.check(q, JobBuild) {
		return
	}
	quiet := s.opts.QuietPeriod
	if d := q.r.FormValue("delay"); d != "" {
		v, err := parseDelay(d)
		if err != nil {
			failure(q.w, err.Error())
			return
		}
		quiet = v
	}
	id, err := s.schedule(j.name, quiet, q.pr.name())
	if err != nil {
		notFound(q)
		return
	}
	q.w.Header().Set("Location", s.url+"queue/item/"+strconv.FormatInt(id, 10)+"/")
	q.w.WriteHeader(http.StatusCreated)
}

// parseDelay is TimeDuration.fromString: "5", "5sec", "500ms", "2min".
func parseDelay(v string) (time.Duration, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"secs", time.Second}, {"sec", time.Second}, {"s", time.Second},
		{"mins", time.Minute}, {"min", time.Minute}, {"m", time.Minute}, {"", time.Second}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f < 0 {
				continue
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("Invalid time duration value: %s", v)
}

func (s *Server) handleLabel(q *request) {
	raw := q.segs[1]
	lbl, err := parseLabel(raw)
	if err != nil {
		notFound(q)
		return
	}
	atom := labelexprIsAtom(lbl)
	class := labelClass(lbl.str, atom)
	s.writeBean(q, func() *bean { return s.labelBean(lbl, class, q.lang) })
}

func labelexprIsAtom(l *label) bool { return l.name != l.str || !strings.ContainsAny(l.str, "&|!<>()") }
