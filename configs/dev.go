package configs

import _ "embed" // required by go:embed into a string; no side effects

// devYAML is configs/dev.yaml, built into the binary so that the embedded
// default (SQLite, in-process sessions, demo routes) needs no file on disk.
//
//go:embed dev.yaml
var devYAML string

// DevYAML returns the text of configs/dev.yaml.
func DevYAML() []byte { return []byte(devYAML) }

// Dev parses configs/dev.yaml (getenv as for Load): the local development
// configuration that `make run` uses.
func Dev(getenv func(string) string) (Config, error) { return Parse([]byte(devYAML), getenv) }
