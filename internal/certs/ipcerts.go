package certs

import "errors"

func newIPCertProvider(cfg Config, ipOnly bool) (Provider, error) {
	return nil, errors.New("not yet")
}
