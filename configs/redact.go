package configs

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// Redacted renders the configuration as YAML for `config check` and start-up
// logs: secrets print as [REDACTED], URLs with a password show it as xxxxx,
// durations in Go form. Feeding the output back to Parse gives the same
// configuration except for the secrets.
func (c Config) Redacted() ([]byte, error) {
	// upstream.url is not meant to hold credentials (Validate refuses them),
	// but a printed config must not leak them even when it does.
	c.Upstream.URL = maskURL(c.Upstream.URL)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
