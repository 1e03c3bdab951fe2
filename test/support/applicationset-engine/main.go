// Command applicationset-engine renders ApplicationSet template strings the way the
// ApplicationSet controller does with goTemplate: true: each string field is its own Go
// text/template, with sprig's generic functions minus env, expandenv and getHostByName
// (argo-cd docs, "Go Template"), the ApplicationSet's goTemplateOptions (missingkey=error), and
// one generator's parameters as data. For a git directory generator those are
// {path: {path, basename, basenameNormalized, segments}} (argo-cd docs, "Git Generator").
//
// Input on stdin (JSON): {"options": [...], "templates": {key: text}, "params": [{...}]}.
// Output on stdout: per params, per key, the rendered text or the error.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
)

type input struct {
	Options   []string                 `json:"options"`
	Templates map[string]string        `json:"templates"`
	Params    []map[string]interface{} `json:"params"`
}

type rendered struct {
	Text  string `json:"text,omitempty"`
	Error string `json:"error,omitempty"`
}

func funcs() template.FuncMap {
	f := template.FuncMap(sprig.GenericFuncMap())
	delete(f, "env")
	delete(f, "expandenv")
	delete(f, "getHostByName")
	return f
}

func render(name, text string, options []string, params map[string]interface{}) rendered {
	t, err := template.New(name).Option(options...).Funcs(funcs()).Parse(text)
	if err != nil {
		return rendered{Error: err.Error()}
	}
	var out strings.Builder
	if err := t.Execute(&out, params); err != nil {
		return rendered{Error: err.Error()}
	}
	return rendered{Text: out.String()}
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "applicationset-engine: bad input:", err)
		os.Exit(2)
	}
	results := []map[string]rendered{}
	for _, params := range in.Params {
		r := map[string]rendered{}
		for key, text := range in.Templates {
			r[key] = render(key, text, in.Options, params)
		}
		results = append(results, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
