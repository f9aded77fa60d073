package jenkinstest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
)

// Permission is a Jenkins permission, named as the security matrix shows it.
type Permission string

// The permissions the emulator checks. Overall/Administer implies every other one, as in Jenkins.
const (
	OverallRead       Permission = "Overall/Read"
	OverallAdminister Permission = "Overall/Administer"
	AgentCreate       Permission = "Agent/Create"
	AgentDelete       Permission = "Agent/Delete"
	AgentConnect      Permission = "Agent/Connect"
	AgentConfigure    Permission = "Agent/Configure"
	AgentDisconnect   Permission = "Agent/Disconnect"
	AgentBuild        Permission = "Agent/Build"
	JobRead           Permission = "Job/Read"
	JobBuild          Permission = "Job/Build"
	JobCancel         Permission = "Job/Cancel"
)

// javaName is the permission's id as Jenkins sends it in X-Required-Permission.
var javaName = map[Permission]string{
	OverallRead:       "hudson.model.Hudson.Read",
	OverallAdminister: "hudson.model.Hudson.Administer",
	AgentCreate:       "hudson.model.Computer.Create",
	AgentDelete:       "hudson.model.Computer.Delete",
	AgentConnect:      "hudson.model.Computer.Connect",
	AgentConfigure:    "hudson.model.Computer.Configure",
	AgentDisconnect:   "hudson.model.Computer.Disconnect",
	AgentBuild:        "hudson.model.Computer.Build",
	JobRead:           "hudson.model.Item.Read",
	JobBuild:          "hudson.model.Item.Build",
	JobCancel:         "hudson.model.Item.Cancel",
}

type user struct {
	name     string
	token    string // API token: no crumb needed
	password string // password: crumb and session needed for POSTs
	perms    map[Permission]bool
}

func (u *user) has(p Permission) bool {
	return u != nil && (u.perms[OverallAdminister] || u.perms[p])
}

// AddUser adds (or replaces) a user who authenticates with an API token.
func (s *Server) AddUser(name, token string, perms ...Permission) {
	s.addUser(&user{name: name, token: token}, perms)
}

// AddPasswordUser adds (or replaces) a user who authenticates with a password, and so needs a
// crumb and the session it belongs to for every POST.
func (s *Server) AddPasswordUser(name, password string, perms ...Permission) {
	s.addUser(&user{name: name, password: password}, perms)
}

func (s *Server) addUser(u *user, perms []Permission) {
	u.perms = map[Permission]bool{}
	for _, p := range perms {
		u.perms[p] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.name] = u
}

// principal is the authenticated caller of one request.
type principal struct {
	user    *user // nil: anonymous
	byToken bool
}

func (pr principal) name() string {
	if pr.user == nil {
		return "anonymous"
	}
	return pr.user.name
}

// authenticate is BasicHeaderProcessor: a Basic header must name a user with that API token or
// password, or the request fails with 401 at once; no header is anonymous.
func (s *Server) authenticate(r *http.Request) (principal, bool) {
	name, secret, ok := r.BasicAuth()
	if !ok {
		return principal{}, true
	}
	s.mu.Lock()
	u := s.users[name]
	s.mu.Unlock()
	if u == nil {
		return principal{}, false
	}
	if u.token != "" && subtle.ConstantTimeCompare([]byte(u.token), []byte(secret)) == 1 {
		return principal{user: u, byToken: true}, true
	}
	if u.password != "" && subtle.ConstantTimeCompare([]byte(u.password), []byte(secret)) == 1 {
		return principal{user: u}, true
	}
	return principal{}, false
}

// session returns the request's servlet session id, creating one (and its cookie) when create
// is set, as HttpServletRequest.getSession(true) does.
func (s *Server) session(w http.ResponseWriter, r *http.Request, create bool) string {
	if c, err := r.Cookie(s.cookie); err == nil {
		s.mu.Lock()
		ok := s.sessions[c.Value]
		s.mu.Unlock()
		if ok {
			return c.Value
		}
	}
	if !create {
		return ""
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	id := "node0" + hex.EncodeToString(b) + ".node0"
	s.mu.Lock()
	s.sessions[id] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: id, Path: "/", HttpOnly: true})
	return id
}

// crumb is DefaultCrumbIssuer.issueCrumb: a SHA-256 of user, client address and session id,
// salted with the instance secret.
func (s *Server) crumb(pr principal, r *http.Request, sessionID string) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	h := sha256.New()
	h.Write([]byte(pr.name() + ";" + host + sessionID))
	h.Write(s.key)
	return hex.EncodeToString(h.Sum(nil))
}

// validCrumb is CrumbFilter: API-token requests are exempt; everyone else must send the crumb of
// the session the request carries, as the Jenkins-Crumb header or form field.
func (s *Server) validCrumb(pr principal, w http.ResponseWriter, r *http.Request) bool {
	if pr.byToken {
		return true
	}
	sent := r.Header.Get("Jenkins-Crumb")
	if sent == "" {
		sent = r.URL.Query().Get("Jenkins-Crumb")
	}
	if sent == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		sent = r.PostFormValue("Jenkins-Crumb")
	}
	if sent == "" {
		return false
	}
	sid := s.session(w, r, false)
	if sid == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(s.crumb(pr, r, sid))) == 1
}
