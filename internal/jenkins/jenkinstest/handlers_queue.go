package jenkinstest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The queue's handlers: /queue/api, /queue/item/N/api and /queue/cancelItem (hudson.model.Queue).

func (s *Server) handleQueue(q *request) {
	s.writeBean(q, func() *bean { return s.queueBean(q.lang, q.pr) })
}

func (s *Server) findItem(id int64) *queueItem {
	for _, it := range s.items {
		if it.id == id {
			return it
		}
	}
	return s.left[id]
}

func (s *Server) handleQueueItem(q *request) {
	id, err := strconv.ParseInt(q.segs[2], 10, 64)
	s.mu.Lock()
	var it *queueItem
	if err == nil {
		it = s.findItem(id)
	}
	s.mu.Unlock()
	if it == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	s.writeBean(q, func() *bean { return s.itemBean(it, q.lang, time.Now()) })
}

// handleCancelItem is Queue.doCancelItem: 204 when cancelled, 404 for an unknown id, 422 without
// Job/Cancel.
func (s *Server) handleCancelItem(q *request) {
	id, err := strconv.ParseInt(q.r.FormValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	var it *queueItem
	if err == nil {
		for _, x := range s.items {
			if x.id == id {
				it = x
			}
		}
	}
	if it == nil || !q.pr.user.has(JobRead) {
		jettyError(q.w, q.r, http.StatusNotFound, fmt.Sprintf("Provided id (%s) not found", q.r.FormValue("id")))
		return
	}
	if !q.pr.user.has(JobCancel) {
		jettyError(q.w, q.r, http.StatusUnprocessableEntity, fmt.Sprintf("Item for id (%d) is not cancellable", id))
		return
	}
	if err := s.cancelLocked(id); err != nil {
		jettyError(q.w, q.r, http.StatusInternalServerError, fmt.Sprintf("Could not cancel run for id %d", id))
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
