package jenkinstest

import (
	"net/http"
	"net/url"
	"strconv"
)

// Endpoints third-party clients (python-jenkins, the `jenkins` npm client) call that the
// provisioner does not.

// handleCancelQueue is Queue.Item.doCancelQueue (deprecated in favour of /queue/cancelItem, still in
// core): @RequirePOST, 204 whether or not anything was cancelled (the item may have left, the user
// may lack Job/Cancel); an item the user may not see is not found (CancelRequestHandlingException).
func (s *Server) handleCancelQueue(q *request) {
	id, err := strconv.ParseInt(q.segs[2], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	var it *queueItem
	if err == nil {
		it = s.findItem(id) // Queue.getItem(id): the queue, then the left items
	}
	if it == nil || !q.pr.user.has(JobRead) {
		jettyError(q.w, q.r, http.StatusNotFound, "Not Found")
		return
	}
	if q.pr.user.has(JobCancel) && it.state != stateLeft {
		_ = s.cancelLocked(id) // a pending item cannot be cancelled: Queue.cancel returns false
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// handleMe is Jenkins.getMe's /me/api/json: the hudson.model.User of the caller.
func (s *Server) handleMe(q *request) {
	name := q.pr.name()
	s.writeBean(q, func() *bean {
		return &bean{class: "hudson.model.User", props: []prop{
			p("absoluteUrl", s.url+"user/"+url.PathEscape(name)),
			p("description", nil),
			p("fullName", name),
			p("id", name),
			p("property", []any{}),
		}}
	})
}
