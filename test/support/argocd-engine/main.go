// Command argocd-engine evaluates Argo CD Notifications triggers and renders its webhook
// templates with the engines Argo CD's notifications-engine uses, so that our ConfigMap is
// proven against them rather than against an emulation of ours:
//
//   - templates: Go text/template with sprig's TxtFuncMap, minus env and expandenv
//     (notifications-engine pkg/templates; docs: "Templates ... leverage text/template and
//     Masterminds/Sprig"), executed with the variables {app, context, serviceType, recipient};
//   - trigger conditions and oncePer: expr (antonmedv/expr), with the Application as `app`;
//     a condition must evaluate to a bool (notifications-engine pkg/triggers).
//
// Input on stdin (JSON): {"triggers": {name: [{when, oncePer, send}]}, "templates": {name:
// {webhook: {service: {method, path, body}}}}, "apps": [{"label", "app"}]}. Output on stdout:
// per app, per trigger condition, whether it fired (or the error), the oncePer value, and the
// rendered webhook of each template it sends.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/antonmedv/expr"
)

type condition struct {
	When    string   `json:"when"`
	OncePer string   `json:"oncePer"`
	Send    []string `json:"send"`
}

type webhook struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body"`
}

type input struct {
	Triggers  map[string][]condition                  `json:"triggers"`
	Templates map[string]map[string]map[string]webhook `json:"templates"`
	Apps      []struct {
		Label string                 `json:"label"`
		App   map[string]interface{} `json:"app"`
	} `json:"apps"`
}

type rendered struct {
	Template string `json:"template"`
	Service  string `json:"service"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Body     string `json:"body,omitempty"`
	Error    string `json:"error,omitempty"`
}

type result struct {
	App       string     `json:"app"`
	Trigger   string     `json:"trigger"`
	Condition int        `json:"condition"`
	Fired     bool       `json:"fired"`
	Error     string     `json:"error,omitempty"`
	OncePer   *string    `json:"oncePer,omitempty"`
	Sent      []rendered `json:"sent,omitempty"`
}

func funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	return f
}

func render(name, text string, vars map[string]interface{}) (string, error) {
	t, err := template.New(name).Funcs(funcs()).Parse(text)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, vars); err != nil {
		return "", err
	}
	return out.String(), nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-engine: bad input:", err)
		os.Exit(2)
	}
	results := []result{}
	for _, a := range in.Apps {
		env := map[string]interface{}{"app": a.App}
		for name, conditions := range in.Triggers {
			for i, c := range conditions {
				r := result{App: a.Label, Trigger: name, Condition: i}
				out, err := expr.Eval(c.When, env)
				if err != nil {
					r.Error = "when: " + err.Error()
					results = append(results, r)
					continue
				}
				fired, ok := out.(bool)
				if !ok {
					r.Error = fmt.Sprintf("when: result is %T, not bool", out)
					results = append(results, r)
					continue
				}
				r.Fired = fired
				if fired && c.OncePer != "" {
					v, err := expr.Eval(c.OncePer, env)
					if err != nil {
						r.Error = "oncePer: " + err.Error()
					} else {
						s := fmt.Sprintf("%v", v)
						r.OncePer = &s
					}
				}
				if fired {
					vars := map[string]interface{}{"app": a.App, "context": map[string]string{}, "serviceType": "webhook", "recipient": ""}
					for _, t := range c.Send {
						for service, w := range in.Templates[t]["webhook"] {
							x := rendered{Template: t, Service: service, Method: w.Method}
							var err error
							if x.Path, err = render(t+".path", w.Path, vars); err == nil {
								x.Body, err = render(t+".body", w.Body, vars)
							}
							if err != nil {
								x.Error = err.Error()
							}
							r.Sent = append(r.Sent, x)
						}
					}
				}
				results = append(results, r)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
