package scenario

import (
	"bytes"

	"github.com/rewind-sre/rewind/source/embedded"
)

// Open generates the history of c into a new embedded TSDB; the caller closes it.
func Open(c Config, opts embedded.Options) (*embedded.DB, error) {
	data, err := Generate(c)
	if err != nil {
		return nil, err
	}
	db, err := embedded.Open(opts)
	if err != nil {
		return nil, err
	}
	if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
