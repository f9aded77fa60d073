package jenkinstest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
)

// Jenkins answers errors with HTML, never JSON: Jetty's error page for sendError (401, 403 crumb,
// 404), Jenkins' own pages for Failure (400), access denied (403), the "Oops!" page (500), and
// the startup page (503). Clients must cope with that, so the emulator reproduces the shapes.

func htmlHeader(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.Header().Set("Cache-Control", "must-revalidate,no-cache,no-store")
	w.WriteHeader(status)
}

// jettyError is Jetty 12's ErrorHandler page, what HttpServletResponse.sendError produces.
func jettyError(w http.ResponseWriter, r *http.Request, status int, message string) {
	htmlHeader(w, status)
	m := html.EscapeString(message)
	fmt.Fprintf(w, `<html>
<head>
<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
<title>Error %d %s</title>
</head>
<body>
<h2>HTTP ERROR %d %s</h2>
<table>
<tr><th>URI:</th><td>%s</td></tr>
<tr><th>STATUS:</th><td>%d</td></tr>
<tr><th>MESSAGE:</th><td>%s</td></tr>
<tr><th>SERVLET:</th><td>Stapler</td></tr>
</table>
<hr/><a href="https://jetty.org/">Powered by Jetty:// 12.0.16</a><hr/>

</body>
</html>
`, status, m, status, m, html.EscapeString(r.URL.Path), status, m)
}

func jenkinsPage(w http.ResponseWriter, status int, title, body string) {
	htmlHeader(w, status)
	fmt.Fprintf(w, `<!DOCTYPE html><html class=""><head resURL="/static/e3b9d568" data-rooturl="" data-resurl="/static/e3b9d568">
<title>%s [Jenkins]</title><meta name="ROBOTS" content="INDEX,NOFOLLOW"><meta name="viewport" content="width=device-width, initial-scale=1">
</head><body id="jenkins" class="yui-skin-sam full-screen jenkins-2" data-version="jenkins">
<div id="page-body" class="app-page-body app-page-body--one-column clear"><div id="main-panel">
%s
</div></div></body></html>
`, html.EscapeString(title), body)
}

// failure is hudson.model.Failure rendered by AbstractModelObject/error.jelly: 400, the message in
// an X-Error header (st:setHeader) and in an "Error" page.
func failure(w http.ResponseWriter, message string) {
	w.Header().Set("X-Error", message)
	jenkinsPage(w, http.StatusBadRequest, "Error", "<h1>Error</h1><p>"+html.EscapeString(message)+"</p>")
}

// oops is Jenkins' page for an uncaught exception.
func oops(w http.ResponseWriter, exception string) {
	jenkinsPage(w, http.StatusInternalServerError, "Jenkins",
		`<h1 style="text-align: center"><img src="/static/e3b9d568/images/rage.svg" height="179" width="154"> Oops!</h1>
<div id="error-description"><h2 style="text-align: center">A problem occurred while processing the request</h2>
<p style="text-align: center">Logging ID=`+strconv.FormatInt(int64(len(exception))*7919, 16)+`</p></div>
<pre class="jenkins-!-display-none">`+html.EscapeString(exception)+`</pre>`)
}

// authRequired is HudsonAuthenticationEntryPoint: 403 for anonymous, with a redirect to the login
// page for browsers.
func authRequired(w http.ResponseWriter, r *http.Request) {
	login := "/login?from=" + url.QueryEscape(r.URL.RequestURI())
	w.Header().Set("X-You-Are-Authenticated-As", "anonymous")
	w.Header().Set("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security.AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose")
	w.Header().Set("X-Required-Permission", javaName[OverallRead])
	w.Header().Add("X-Permission-Implied-By", "hudson.security.Permission.GenericRead")
	w.Header().Add("X-Permission-Implied-By", javaName[OverallAdminister])
	w.Header().Set("X-Hudson-Login", login)
	htmlHeader(w, http.StatusForbidden)
	fmt.Fprintf(w, "<html><head><meta http-equiv='refresh' content='1;url=%s'/><script id='redirect' data-redirect-url='%s' src='/static/e3b9d568/scripts/redirect.js'></script></head><body style='background-color:white; color:white;'>\n\n\nAuthentication required\n<!--\n-->\n\n</body></html>",
		html.EscapeString(login), html.EscapeString(login))
}

// accessDenied is AccessDeniedException3's page for an authenticated user lacking a permission.
func accessDenied(w http.ResponseWriter, who string, perm Permission) {
	w.Header().Set("X-You-Are-Authenticated-As", who)
	w.Header().Set("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security.AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose")
	w.Header().Set("X-Required-Permission", javaName[perm])
	w.Header().Add("X-Permission-Implied-By", javaName[OverallAdminister])
	jenkinsPage(w, http.StatusForbidden, "Access Denied",
		"<h1>Access Denied</h1><p>"+html.EscapeString(msg(langEN, "AccessDenied", who, string(perm)))+"</p>")
}

// requirePOST is the page @RequirePOST shows for another method.
func requirePOST(w http.ResponseWriter) {
	jenkinsPage(w, http.StatusMethodNotAllowed, "Form post required",
		`<h1>Form post required</h1><p>You must use POST method to trigger builds.</p><form method="POST"><input type="submit" value="Proceed"></form>`)
}

// starting is hudson.util.HudsonIsLoading's index.jelly, the page every path answers with 503 while
// Jenkins starts up: no X-Jenkins (Functions.advertiseHeaders finds no Jenkins instance yet), no
// Retry-After, the English texts of index.properties. Fault-injected 503s and outages use it too.
func starting(w http.ResponseWriter) {
	h := w.Header()
	h.Del("X-Jenkins")
	h.Del("X-Jenkins-Session")
	h.Set("Expires", "0")
	h.Set("Cache-Control", "no-cache,no-store,must-revalidate")
	h.Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><head data-rooturl="" data-resurl="/static/e3b9d568" data-imagesurl="/static/e3b9d568/images" resURL="/static/e3b9d568"><title>Starting Jenkins</title><meta name="ROBOTS" content="NOFOLLOW"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/e3b9d568/jsbundles/simple-page.css" type="text/css"></head><body><div class="simple-page" role="main"><div class="app-jenkins-booting"><div class="logo"><img src="/static/e3b9d568/images/svgs/logo.svg" alt="Jenkins logo"></div><h1 class="loading"><span class="jenkins-spinner">Jenkins is getting ready to work</span></h1><p class="restarting">Your browser will reload automatically when Jenkins is ready.</p></div></div><script src="/static/e3b9d568/scripts/loading.js" type="text/javascript"></script></body></html>
`)
}

// badGateway is what a reverse proxy in front of Jenkins answers when Jenkins is gone.
func badGateway(w http.ResponseWriter) {
	htmlHeader(w, http.StatusBadGateway)
	fmt.Fprint(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
}
