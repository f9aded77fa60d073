package statuspage

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The helpers below read the page as a browser's parser would (golang.org/x/net/html implements the
// HTML5 parsing algorithm), so the tests check the document's structure and text, not the bytes the
// template happened to write.

func parseDoc(t *testing.T, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	return doc
}

// findAll returns every element under n for which match is true, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func byTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

func hasAttr(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { _, ok := attr(n, name); return ok }
}

func byID(id string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, "id"); return ok && v == id }
}

func byClass(class string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		v, _ := attr(n, "class")
		for _, c := range strings.Fields(v) {
			if c == class {
				return true
			}
		}
		return false
	}
}

// findID returns the element with the id, or nil.
func findID(doc *html.Node, id string) *html.Node {
	if got := findAll(doc, byID(id)); len(got) > 0 {
		return got[0]
	}
	return nil
}

func attr(n *html.Node, name string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func attrOf(n *html.Node, name string) string {
	v, _ := attr(n, name)
	return v
}

// text is the element's text content with runs of white space folded to one space, as a reader
// sees it.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// cells maps each td of a row by its data-col name.
func cells(row *html.Node) map[string]*html.Node {
	out := map[string]*html.Node{}
	for _, td := range findAll(row, byTag("td")) {
		out[attrOf(td, "data-col")] = td
	}
	return out
}

// hrefIn is the href of the first link with the class inside n, "" when there is none.
func hrefIn(n *html.Node, class string) string {
	if n == nil {
		return ""
	}
	links := findAll(n, func(m *html.Node) bool { return m.Data == "a" && byClass(class)(m) })
	if len(links) == 0 {
		return ""
	}
	return attrOf(links[0], "href")
}

// textOf is the text of the first element with the class inside n, "" when there is none.
func textOf(n *html.Node, class string) string {
	if n == nil {
		return ""
	}
	if got := findAll(n, byClass(class)); len(got) > 0 {
		return text(got[0])
	}
	return ""
}
